"""A case is a conversation (issue 13): access codes and followers, additions, replies to the resident,
nearby duplicates, merging, voice descriptions — transcripts in both languages, and the store's rules."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from conversations import notices
from conversations.engine import Engine
from storage import cases
from storage.cases import TooManyTries
from storage.models import AccessCodeAttempt, Attachment, Case, CaseEvent, CaseFollower, Identity, Matter, Notification
from storage.timeutil import utcnow
from tests.test_dialogs_resident import STREET_LIGHT, case_number_in, report_transcript, start
from tests.test_dialogs_staff import CENTRE, staff
from tests.transcript import Chat, Contact, Location, Photo, Press, Voice

CODE = re.compile(r"(LS-\d{8}-\d{4}) · (\d{4})")
NEAR = (29.6561, 91.1222)  # about 40 m from GRID_POINT


async def person_id(sessionmaker, web_id: str) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(Identity.person_id).where(Identity.external_id == web_id))


async def notices_to(sessionmaker, web_id: str) -> list[Notification]:
    pid = await person_id(sessionmaker, web_id)
    async with sessionmaker() as session:
        return list(await session.scalars(select(Notification).where(Notification.recipient_id == pid).order_by(Notification.id)))


async def rendered(sessionmaker, notification: Notification, language: str):
    async with sessionmaker() as session:
        return await notices.render(session, language, notification)


async def reported(engine, language: str, user: str) -> tuple[Chat, str, str]:
    chat = await start(engine, user, language)
    await chat.run(report_transcript(language))
    match = CODE.search(chat.text)
    assert match, chat.text
    return chat, match.group(1), match.group(2)


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_number_and_access_code_open_the_case_anywhere_and_bring_its_notices(demo, language):
    engine = Engine(demo)
    reporter, number, code = await reported(engine, language, f"reporter-{language}")
    assert "Access code: {number} · {code}" and code in reporter.text
    wrong = f"{int(code) ^ 1:04d}"
    other = await start(engine, f"neighbour-{language}", language)
    await other.run([
        # The number alone, or with a wrong code: the same "not found" as for a case that does not exist.
        (number, [("No case with the number {number} was found among the cases you can see.", {"number": number}),
                  "To follow a case someone else reported, type its number with its access code, "
                  "for example LS-20261124-0042 1234."]),
        (f"{number} {wrong}", ("No case with the number {number} was found among the cases you can see.", {"number": number})),
        ("LS-20990101-0001 1234", ("No case with the number {number} was found among the cases you can see.",
                                   {"number": "LS-20990101-0001"})),
        (f"{number} · {code}", [("You now follow case {number}: you will be told what happens, as its reporter is.",
                                 {"number": number}), ("Case {number}", {"number": number})]),
        # From now on the number alone opens it (no personal data on the card, no access code either).
        (number, [("Case {number}", {"number": number}), lambda c: code not in c.text and "add:" not in " ".join(c.buttons())]),
        (Press("menu:cases"), ["Cases you follow:", lambda c: f"case:{number}" in c.buttons()]),
    ])
    centre = staff(engine, CENTRE, "zh")
    await centre.send(Press(f"act:{number}:accept"))
    told = [n for n in await notices_to(demo, f"neighbour-{language}") if n.message_key == "accept.reporter"]
    assert len(told) == 1
    text = (await rendered(demo, told[0], language)).text
    assert number in text and code not in text  # a follower is told, without the reporter's code…
    assert notices.i18n.translate(language, notices.FOLLOWED_LINE, number=number) in text  # …as a follower
    mine = [n for n in await notices_to(demo, f"reporter-{language}") if n.message_key == "accept.reporter"]
    assert code in (await rendered(demo, mine[0], language)).text  # the reporter's notices carry it


async def test_wrong_codes_are_limited_per_person_and_per_number(demo):
    engine = Engine(demo)
    _, number, code = await reported(engine, "zh", "reporter-limit")
    guesser = await start(engine, "guesser", "bo")
    for attempt in range(cases.CODE_TRIES_PER_PERSON):
        await guesser.send(f"{number} {(int(code) + 1 + attempt) % 10000:04d}")
        assert "LS-20261124-0042" in guesser.text  # the polite "not found" with the hint
    await guesser.run([(f"{number} {code}", "Too many wrong tries. Please wait an hour, then type the number and code again.")])
    async with demo() as session:
        case = await cases.load_case(session, number)
        assert not case.followers
    # An hour later the right code works.
    engine.clock = lambda: utcnow() + timedelta(hours=1, minutes=1)
    await guesser.run([(f"{number} {code}", ("You now follow case {number}: you will be told what happens, as its reporter is.",
                                             {"number": number}))])


async def test_the_store_refuses_enumeration_across_people(sessionmaker, world):
    async with sessionmaker.begin() as session:
        case = await cases.open_case(session, reporter_id=world.resident, matter_code="LIGHT", description="路灯坏了",
                                     language="zh", grid_code="G1")
        number, code = case.number, case.access_code
    assert re.fullmatch(r"\d{4}", code)
    now = utcnow()
    for _ in range(cases.CODE_TRIES_PER_NUMBER):  # many people, one wrong try each
        async with sessionmaker.begin() as session:
            from storage.people import person_for_identity

            person, _ = await person_for_identity(session, "web", f"g{_}")
            assert await cases.follow_with_code(session, person.id, number, "x" + code[1:], now=now) is None
    async with sessionmaker.begin() as session:
        with pytest.raises(TooManyTries):
            await cases.follow_with_code(session, world.other_resident, number, code, now=now)
        assert await session.scalar(select(func.count()).select_from(AccessCodeAttempt)) == cases.CODE_TRIES_PER_NUMBER


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_reporter_adds_text_photos_and_a_voice_note_and_staff_are_told(demo, language):
    engine = Engine(demo)
    reporter, number, _ = await reported(engine, language, f"adder-{language}")
    detail = "晚上七点以后完全不亮" if language == "zh" else "ཕྱི་དྲོ་ཆུ་ཚོད་༧ རྗེས་ནས་གཏན་ནས་མི་འབར།"
    await reporter.run([
        (Press(f"case:{number}"), lambda c: f"add:{number}" in c.buttons()),
        (Press(f"add:{number}"), ("What would you like to add to case {number}? Type it, or send photos or a voice message.",
                                  {"number": number})),
        (detail, ("Added to case {number}. The staff handling it have been told. Send more, or press Done.", {"number": number})),
        (Photo("more-1"), "Added to case {number}. The staff handling it have been told. Send more, or press Done."),
        (Voice("voice-1", duration=20), "Added to case {number}. The staff handling it have been told. Send more, or press Done."),
        (Photo("huge", error="too_large"), "That file is too large. A photo may have at most {photo_mb} MB, a voice note at most {voice_mb} MB."),
        (Voice("long", duration=600, error="too_long"), "That voice note is too long: at most {minutes} minutes. Please record a shorter one."),
        (Press("added:done"), ["Added by the resident", lambda c: detail in c.text]),
    ])
    async with demo() as session:
        case = await cases.load_case(session, number)
        assert [(a.kind, a.platform_file_id) for a in case.attachments] == [
            ("photo", "photo-1"), ("photo", "more-1"), ("voice", "voice-1")]
        assert case.attachments[-1].duration_seconds == 20
        additions = list(await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                                                       CaseEvent.action == "add_to_case")))
        assert len(additions) == 3 and additions[0].note == detail
    # The township centre holds the case: told of each addition, with the photo or voice note itself.
    told = [n for n in await notices_to(demo, CENTRE) if n.message_key == "add_to_case.holders"]
    assert len(told) == 3
    text_notice, photo_notice, voice_notice = [await rendered(demo, n, "zh") for n in told]
    assert detail in text_notice.text
    assert [m["kind"] for m in photo_notice.media] == ["photo"] and [m["kind"] for m in voice_notice.media] == ["voice"]
    # Staff read the addition on the case card, and get every photo and the voice note again.
    centre = staff(engine, CENTRE, "zh")
    await centre.send(Press(f"case:{number}"))
    assert detail in centre.text and "Voice notes" not in centre.text
    assert sorted(m["kind"] for m in centre.replies[0].media) == ["photo", "photo", "voice"]


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_a_photo_outside_a_dialog_is_offered_to_the_open_case(demo, language):
    engine = Engine(demo)
    reporter, number, _ = await reported(engine, language, f"stray-{language}")
    await reporter.run([
        (Photo("later"), [("Add this to your open case {number}?", {"number": number}),
                          lambda c: f"attach:{number}" in c.buttons() and "menu:report" in c.buttons()]),
        (Press(f"attach:{number}"), ("Added to case {number}. The staff handling it have been told.", {"number": number})),
    ])
    async with demo() as session:
        case = await cases.load_case(session, number)
        assert [a.platform_file_id for a in case.attachments] == ["photo-1", "later"]
    # With two open cases, the person chooses which one.
    await reporter.run(report_transcript(language))
    second = case_number_in(reporter)
    await reporter.run([
        (Voice("which"), ["Which of your open cases is this for?",
                          lambda c: {f"attach:{number}", f"attach:{second}"} <= set(c.buttons())]),
        (Press(f"attach:{second}"), ("Added to case {number}. The staff handling it have been told.", {"number": second})),
    ])
    async with demo() as session:
        assert [a.kind for a in (await cases.load_case(session, second)).attachments] == ["photo", "voice"]


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_no_additions_to_a_closed_case_but_a_way_on(demo, language):
    engine = Engine(demo)
    reporter, number, _ = await reported(engine, language, f"closed-{language}")
    async with demo.begin() as session:
        centre_id = await session.scalar(select(Identity.person_id).where(Identity.external_id == CENTRE))
        await cases.act(session, number, centre_id, "reject", reason="不属于本级管辖范围")
    await reporter.run([
        (Press(f"add:{number}"), [("Case {number} is no longer open, so nothing can be added to it. If the problem is still "
                                   "there, rate the outcome as unsatisfied within 7 days of closing to reopen it, or report it again.",
                                   {"number": number}), lambda c: "menu:report" in c.buttons()]),
        (Photo("too-late"), "You have no open case to add this to. To report a problem, start a report: "
                          "you can send photos and voice messages in it."),
    ])
    async with demo() as session:
        case = await cases.load_case(session, number)
        assert [a.platform_file_id for a in case.attachments] == ["photo-1"]


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_staff_write_to_the_resident_and_keep_internal_notes_apart(demo, language):
    engine = Engine(demo)
    reporter, number, code = await reported(engine, language, f"talk-{language}")
    follower = await start(engine, f"talk-follower-{language}", language)
    await follower.send(f"{number} {code}")
    centre = staff(engine, CENTRE, "zh")
    await centre.run([
        (Press(f"case:{number}"), [lambda c: f"act:{number}:reply_to_resident" in c.buttons(),
                                   lambda c: "✉ 给居民留言（居民可见）" in " ".join(c.replies[-1].button_labels())]),
        (Press(f"act:{number}:reply_to_resident"),
         "Type your message to the resident. The resident will read it; people who only follow the case will not."),
        ("请问路灯具体在几号楼门口？", "Done. Case {number} is now: {state}"),
        (Press(f"act:{number}:comment"), "Type your note. Only staff will read it; the resident will not."),
        ("报修电话已打过，待确认", "Done. Case {number} is now: {state}"),
        (Press(f"case:{number}"), [lambda c: "(staff only)" in c.text or "（仅工作人员可见）" in c.text,
                                   lambda c: "（居民可见）" in c.text]),
    ])
    told = [n for n in await notices_to(demo, f"talk-{language}") if n.message_key == "reply_to_resident.reporter"]
    assert len(told) == 1
    notice = await rendered(demo, told[0], language)
    assert "请问路灯具体在几号楼门口？" in notice.text and f"add:{number}" in notice.button_data()
    follower_told = [n for n in await notices_to(demo, f"talk-follower-{language}") if n.message_key == "reply_to_resident.reporter"]
    assert len(follower_told) == 1 and f"add:{number}" not in (await rendered(demo, follower_told[0], language)).button_data()
    # The resident answers from the notice: the answer is an addition the centre is told about.
    await reporter.run([
        (Press(f"add:{number}"), "What would you like to add to case {number}? Type it, or send photos or a voice message."),
        ("在3号楼东门", "Added to case {number}. The staff handling it have been told. Send more, or press Done."),
        (Press(f"case:{number}"), [lambda c: "请问路灯具体在几号楼门口？" in c.text, lambda c: "报修电话已打过" not in c.text]),
    ])
    # A follower reads the case as the public does (storage.reading): neither the message to the reporter
    # nor the reporter's answer.
    await follower.run([(Press(f"case:{number}"), [lambda c: "请问路灯具体在几号楼门口？" not in c.text,
                                                     lambda c: "在3号楼东门" not in c.text])])
    assert [n.message_key for n in await notices_to(demo, CENTRE)][-1] == "add_to_case.holders"


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_a_nearby_open_case_of_the_same_kind_can_be_followed_instead(demo, language):
    engine = Engine(demo)
    _, number, _ = await reported(engine, "zh", f"first-{language}")
    neighbour = await start(engine, f"second-{language}", language)
    steps = report_transcript(language)[:7]
    steps[3] = (Location(*NEAR), steps[3][1])
    await neighbour.run(steps + [
        (Contact("13900000000"), [("A similar case is already open about {metres} m from here: {number} · {matter} · {state} · "
                                   "followed by {count} people. If it is the same problem, you may follow it instead of "
                                   "reporting it again."), lambda c: f"follow:{number}" in c.buttons(),
                                  lambda c: "13812345678" not in c.text]),
        (Press(f"follow:{number}"), ("Thank you. You now follow case {number} and will be told what happens; your report was "
                                     "not filed again. Followers of this case: {count}.")),
    ])
    async with demo() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1
        case = await cases.load_case(session, number)
        assert [f.reason for f in case.followers] == ["supporter"]
    # Far away, or of another kind, or closed: no hint.
    async with demo() as session:
        assert await cases.nearby_open_cases(session, STREET_LIGHT, 29.6600, 91.1220) == []
        other = await session.scalar(select(Matter.code).where(Matter.code != STREET_LIGHT).limit(1))
        assert await cases.nearby_open_cases(session, other, *NEAR) == []
        assert len(await cases.nearby_open_cases(session, STREET_LIGHT, *NEAR)) == 1
        assert await cases.nearby_open_cases(session, STREET_LIGHT, *NEAR, now=utcnow() + timedelta(days=31)) == []


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_centre_merges_a_repeat_and_its_reporter_follows_the_surviving_case(demo, language):
    engine = Engine(demo)
    _, first, _ = await reported(engine, "zh", f"m1-{language}")
    second_chat, second, _ = await reported(engine, language, f"m2-{language}")  # submitted despite the hint
    centre = staff(engine, CENTRE, "zh")
    await centre.run([
        (Press(f"act:{second}:merge"), ["Type the number of the case this one repeats. It must be open and of the same kind; "
                                        "the reporter will follow that case and be told.",
                                        lambda c: f"input:{first}" in c.buttons() and f"input:{second}" not in c.buttons()]),
        (second, "A case cannot be merged into itself."),
        (Press(f"act:{second}:merge"), []),
        ("LS-20990101-0001", "There is no case with that number."),
        (Press(f"act:{second}:merge"), []),
        (Press(f"input:{first}"), "Done. Case {number} is now: {state}"),  # the nearby original, offered as a button
        (Press(f"case:{first}"), [("Case {number}, a repeat of this one, was merged into it", {"number": second}),
                                  "Followed by: {count}"]),
    ])
    async with demo() as session:
        merged = await cases.load_case(session, second)
        surviving = await cases.load_case(session, first)
        assert merged.state == "merged" and merged.merged_into_id == surviving.id and merged.closed_at is not None
        assert [f.person_id for f in surviving.followers] == [merged.reporter_id]
    told = [n for n in await notices_to(demo, f"m2-{language}") if n.message_key == "merge.reporter"]
    notice = await rendered(demo, told[0], language)
    assert first in notice.text and second in notice.text and f"case:{first}" in notice.button_data()
    await second_chat.run([(Press(f"case:{second}"), [("Merged into case {number}, which carries on", {"number": first})])])
    # Now the surviving case's notices reach the merged case's reporter.
    await centre.send(Press(f"act:{first}:accept"))
    assert "accept.reporter" in [n.message_key for n in await notices_to(demo, f"m2-{language}")]


async def test_merge_refuses_a_closed_or_different_matter_case(sessionmaker, world):
    async with sessionmaker.begin() as session:
        light = await cases.open_case(session, reporter_id=world.resident, matter_code="LIGHT", description="路灯坏了",
                                      language="zh", grid_code="G1")
        elder = await cases.open_case(session, reporter_id=world.other_resident, matter_code="ELDER", description="老人无人照看",
                                      language="zh", grid_code="G1")
        repeat = await cases.open_case(session, reporter_id=world.other_resident, matter_code="LIGHT", description="灯不亮",
                                       language="zh", grid_code="G1")
        await cases.act(session, light.id, world.centre_t1, "reject", reason="信息不足")
    for target, reason in [(elder.number, "other_matter"), (light.number, "closed"), (repeat.number, "same_case")]:
        async with sessionmaker.begin() as session:
            with pytest.raises(cases.InvalidInput) as refused:
                await cases.act(session, repeat.number, world.centre_t1, "merge", into=target)
            assert refused.value.details["reason"] == reason
    async with sessionmaker() as session:
        assert (await cases.load_case(session, repeat.number)).state == "reported"
        assert await session.scalar(select(func.count()).select_from(CaseFollower)) == 0
    # Residents and grid workers may not merge.
    async with sessionmaker.begin() as session:
        with pytest.raises(cases.NotPermitted):
            await cases.act(session, repeat.number, world.worker_g1, "merge", into=elder.number)


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_a_voice_message_can_be_the_description(demo, language):
    engine = Engine(demo)
    chat = await start(engine, f"speaker-{language}", language)
    steps = report_transcript(language)
    steps[2] = (Voice("voice-desc", duration=40), ["Voice message received: it will be the description of your report.",
                                                  "Where is the problem? Share your location with the button below, or "
                                                  "choose the place step by step."])
    steps[7] = (steps[7][0], [steps[7][1], "The description is your voice message; staff will listen to it."])
    await chat.run(steps)
    number = case_number_in(chat)
    async with demo() as session:
        case = await cases.load_case(session, number)
        assert "🎤" in case.description
        assert [(a.kind, a.platform_file_id, a.duration_seconds) for a in case.attachments] == [
            ("photo", "photo-1", None), ("voice", "voice-desc", 40)]
        assert await session.scalar(select(func.count()).select_from(Attachment)) == 2


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_after_a_rejection_for_insufficient_information_the_missing_part_is_added(demo, language):
    engine = Engine(demo)
    reporter, number, _ = await reported(engine, language, f"resubmit-{language}")
    centre = staff(engine, CENTRE, "zh")
    await centre.run([
        (Press(f"act:{number}:reject"), lambda c: "input:insufficient" in c.buttons()),
        (Press("input:insufficient"), lambda c: "input:confirm" in c.buttons()),  # rejecting asks first (issue 14)
        (Press("input:confirm"), "Done. Case {number} is now: {state}"),
    ])
    [notice] = [n for n in await notices_to(demo, f"resubmit-{language}") if n.message_key == "reject.reporter"]
    assert f"add:{number}" in (await rendered(demo, notice, language)).button_data()
    missing = "3号楼东门口那一盏" if language == "zh" else "ཁང་པ་ཨང་༣ སྒོ་ཤར་མའི་ལམ་སྒྲོན།"
    await reporter.run([
        (Press(f"case:{number}"), lambda c: f"add:{number}" in c.buttons()),
        (Press(f"add:{number}"), "What would you like to add to case {number}? Type it, or send photos or a voice message."),
        (missing, [("Thank you. Case {number} goes back to the grid centre with what you added.", {"number": number})]),
        (Press("added:done"), ["Missing information added by the resident; back to the grid centre", lambda c: missing in c.text]),
    ])
    async with demo() as session:
        case = await cases.load_case(session, number)
        assert case.state == "reported" and case.rejection_reason is None and case.closed_at is None
    assert [n.message_key for n in await notices_to(demo, CENTRE)][-1] == "resubmit.centre"
    await centre.run([(Press(f"case:{number}"), lambda c: f"act:{number}:accept" in c.buttons())])

    # Another reason, or too late: nothing to add; a new report is offered instead.
    await centre.run([(Press(f"act:{number}:reject"), []), (Press("input:jurisdiction"), []),
                      (Press("input:confirm"), "Done. Case {number} is now: {state}")])
    await reporter.run([(Press(f"add:{number}"), "Case {number} is no longer open, so nothing can be added to it. If the problem "
                                                 "is still there, rate the outcome as unsatisfied within 7 days of closing to "
                                                 "reopen it, or report it again.")])
    async with demo.begin() as session:
        case = await cases.load_case(session, number)
        case.rejection_reason = cases.INSUFFICIENT_INFORMATION
        case.closed_at = utcnow() - timedelta(days=cases.RESUBMIT_DAYS, minutes=1)
    await reporter.run([(Press(f"add:{number}"), lambda c: "menu:report" in c.buttons() and "added:done" not in c.buttons())])


def test_the_stored_insufficient_reason_is_the_listed_one():
    from conversations.i18n import translate
    from conversations.wording import REJECT_REASONS

    assert translate("zh", REJECT_REASONS["insufficient"]) == cases.INSUFFICIENT_INFORMATION


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_a_refused_file_is_explained_and_not_kept_in_any_dialog(demo, language):
    engine = Engine(demo)
    chat = await start(engine, f"refused-{language}", language)
    steps = report_transcript(language)[:5]
    await chat.run(steps + [
        (Photo("a-pdf", error="not_media"), ["That file is not a photo or a voice recording we can read. Please send a "
                                             "picture or a voice message.",
                                             "You may send up to {limit} photos of the problem. Press Done when finished, or Skip."]),
        (Photo("huge", error="too_large"), "That file is too large. A photo may have at most {photo_mb} MB, a voice note at "
                                           "most {voice_mb} MB."),
        (Press("photos:done"), []),
    ])
    async with demo() as session:
        from storage.models import DialogState

        state = await session.scalar(select(DialogState).where(DialogState.person_id == await person_id(demo, f"refused-{language}")))
        assert state.data.get("photos") == []


async def test_a_case_keeps_a_bounded_number_of_files(demo):
    engine = Engine(demo)
    reporter, number, _ = await reported(engine, "zh", "many-files")
    async with demo.begin() as session:
        case = await cases.load_case(session, number)
        for index in range(5 * cases.MAX_ATTACHMENTS - 1):
            session.add(Attachment(case_id=case.id, platform="web", platform_file_id=f"f{index}", kind="photo"))
    await reporter.run([
        (Press(f"add:{number}"), []),
        (Photo("one-too-many"), ("Case {number} already holds as many photos and voice notes as it can keep.", {"number": number})),
    ])
