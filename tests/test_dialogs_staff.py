"""Grid workers, grid centres and departments in the chat: transcripts through the platform-neutral layer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from conversations import notices
from conversations.engine import Engine
from conversations.i18n import translate
from storage.models import Case, CaseView, Notification, Role
from storage.staff import create_invitation
from storage.timeutil import utcnow
from tests.test_dialogs_resident import STREET_LIGHT, case_number_in, report_transcript, start
from tests.transcript import Chat, Contact, Photo, Press, says

WORKER = "demo-worker-g01"  # grid worker of 5401-D1-01-01-G01 (zh)
OTHER_WORKER = "demo-worker-g02"  # another grid (bo)
CENTRE = "demo-centre-gesang"  # township centre above that grid (zh)
OTHER_CENTRE = "demo-centre-deji"  # the other township (bo)
HANDLER = "demo-handler-urban-management"  # owns street lights (bo)
OTHER_HANDLER = "demo-handler-civil-affairs"
CHIEF = "demo-chief-langsai"  # grid chief of the community (zh)
LANGUAGE = {WORKER: "zh", OTHER_WORKER: "bo", CENTRE: "zh", OTHER_CENTRE: "bo", HANDLER: "bo", OTHER_HANDLER: "bo", CHIEF: "zh"}


def staff(engine, web_id: str, language: str) -> Chat:
    return Chat(engine, web_id, language)


async def resident_report(engine, language: str = "zh", user: str | None = None) -> tuple[Chat, str]:
    chat = await start(engine, user or f"resident-{language}", language)
    await chat.run(report_transcript(language))
    return chat, case_number_in(chat)


async def notices_for(sessionmaker, web_id: str) -> list[Notification]:
    async with sessionmaker() as session:
        from storage.models import Identity

        person_id = await session.scalar(select(Identity.person_id).where(Identity.external_id == web_id))
        return list(await session.scalars(select(Notification).where(Notification.recipient_id == person_id).order_by(Notification.id)))


async def render_last(sessionmaker, web_id: str, language: str) -> str:
    async with sessionmaker() as session:
        notification = (await notices_for(sessionmaker, web_id))[-1]
        return (await notices.render(session, language, notification)).text


@pytest.mark.parametrize("language,worker", [("zh", WORKER), ("bo", "demo-worker-g02")])
async def test_worker_logs_a_case_and_resolves_it_on_the_spot(demo, language, worker):
    engine = Engine(demo)
    chat = staff(engine, worker, language)
    grid = "5401-D1-01-01-G01" if worker == WORKER else "5401-D1-01-01-G02"
    description = "巡查发现小区路灯不亮" if language == "zh" else "ལམ་སྒྲོན་མི་འབར་བ་རྙེད་བྱུང་།"
    await chat.run([
        ("/menu", lambda c: "menu:staff" in c.buttons()),
        (Press("menu:staff"), ["Your roles:", lambda c: "staff:patrol" in c.buttons()]),
        (Press("staff:patrol"), "What kind of problem is it? Choose below, or type a few words and I will suggest the right kind."),
        (Press(f"matter:{STREET_LIGHT}"), []),
        (description, lambda c: f"place:{grid}" == c.buttons()[0]),  # the worker's own grid first
        (Press(f"place:{grid}"), "Add an address or a landmark (building, street, door number) so the grid worker finds it, or skip."),
        (Press("address:skip"), []),
        (Press("photos:done"), "Which residents are concerned, if any? Type names or households, or skip."),
        (Press("residents:skip"), "Could you resolve it on the spot, or does it need the grid centre and a department?"),
        (Press("outcome:resolved"), "What did you do? Describe the result."),
        ("已更换灯泡" if language == "zh" else "གློག་སྒྲོན་བརྗེས་ཟིན།", "Case {number} is logged and closed as resolved on the spot."),
    ])
    async with demo() as session:
        case = await session.scalar(select(Case).where(Case.number == case_number_in(chat)))
        assert case.state == "closed" and case.source.value == "worker_patrol" and case.grid.code == grid


async def test_worker_reports_a_patrol_case_up_to_the_centre(demo):
    engine = Engine(demo)
    chat = staff(engine, WORKER, "zh")
    await chat.run([
        (Press("staff:patrol"), []), (Press(f"matter:{STREET_LIGHT}"), []), ("整条街路灯不亮", []),
        (Press("place:5401-D1-01-01-G01"), []), (Press("address:skip"), []), (Press("photos:done"), []),
        ("3号楼王阿姨", []),
        (Press("outcome:report"), "Case {number} is logged and reported up to the grid centre."),
    ])
    number = case_number_in(chat)
    centre = staff(engine, CENTRE, "zh")
    await centre.run([
        (Press("staff:queue"), lambda c: f"case:{number}" in c.buttons()),
        # Personal data of the residents concerned is for the grid's workers, not the centre (Art. 19).
        (Press(f"case:{number}"), [lambda c: "王阿姨" not in c.text, lambda c: f"act:{number}:accept" in c.buttons()]),
    ])
    await chat.run([(Press(f"case:{number}"), "Residents concerned: {names}")])


async def test_full_flow_accept_transfer_handle_verify_close_with_notices_in_each_language(demo):
    engine = Engine(demo)
    resident, number = await resident_report(engine, "bo")
    centre = staff(engine, CENTRE, "zh")
    handler = staff(engine, HANDLER, "bo")
    worker = staff(engine, WORKER, "zh")

    # The centre's notice opens the card; accept is one tap away, transfer one more (department preselected).
    assert "New report" not in await render_last(demo, CENTRE, "zh")
    await centre.run([
        (Press(f"case:{number}"), lambda c: c.buttons()[:2] == [f"act:{number}:accept", f"act:{number}:reject"]),
        (Press(f"act:{number}:accept"), ("Done. Case {number} is now: {state}", {"number": number, "state": "已受理"}) if False
         else "Done. Case {number} is now: {state}"),
        (Press(f"case:{number}"), lambda c: f"act:{number}:transfer" in c.buttons()),
        (Press(f"act:{number}:transfer"), ["Which department should handle it?", lambda c: c.buttons()[0] == "input:urban_management"]),
        (Press("input:urban_management"), "Done. Case {number} is now: {state}"),
    ])
    assert says("bo", [type("R", (), {"text": await render_last(demo, "resident-bo", "bo")})()],
                "Your case {number} ({matter}) was sent to {department}. Time limit: {deadline}.")
    await handler.run([
        (Press("staff:queue"), lambda c: f"case:{number}" in c.buttons()),
        (Press(f"case:{number}"), lambda c: f"act:{number}:start_handling" in c.buttons()),
        (Press(f"act:{number}:start_handling"), "Done. Case {number} is now: {state}"),
        (Press(f"case:{number}"), lambda c: f"act:{number}:submit_result" in c.buttons()),
        (Press(f"act:{number}:submit_result"), "Please describe the result: what was done."),
        ("གློག་སྒྲོན་གསར་པ་བཙུགས་ཟིན།", "You may send up to {limit} photos, then press Done."),
        (Photo("result-photo"), "Photo {count} received. Send another, or press Done."),
        (Press("input:done"), "Done. Case {number} is now: {state}"),
    ])
    keys = [n.message_key for n in await notices_for(demo, WORKER)]
    assert "submit_result.grid_workers" in keys
    await worker.run([
        (Press("staff:verify"), ["Cases to verify on site (within 24 hours of the result):", lambda c: f"case:{number}" in c.buttons()]),
        (Press(f"case:{number}"), ["To be checked on site by: {time}", lambda c: f"act:{number}:verify_pass" in c.buttons()]),
        (Press(f"act:{number}:verify_pass"), "Done. Case {number} is now: {state}"),
    ])
    async with demo() as session:
        from storage.models import Attachment

        photos = list(await session.scalars(select(Attachment).join(Case).where(Case.number == number)))
        assert [p.platform_file_id for p in photos] == ["photo-1", "result-photo"]
    resident_keys = [n.message_key for n in await notices_for(demo, "resident-bo")]
    assert resident_keys == ["accept.reporter", "transfer.reporter", "start_handling.reporter",
                             "submit_result.reporter", "verify_pass.reporter"]
    # The resident then rates it unsatisfied: the case is reopened and goes back to the centre.
    await resident.run([
        (Press(f"rate:{number}"), "How satisfied are you with how case {number} was handled?"),
        (Press("rating:unsatisfied"), "Please tell us what is still wrong. Your case will be reopened."),
        ("ལམ་སྒྲོན་ཡང་བསྐྱར་ཆག་སོང་།", "Thank you. Case {number} has been reopened and goes back to the grid centre."),
    ])
    async with demo() as session:
        assert (await session.scalar(select(Case).where(Case.number == number))).state == "accepted"


async def test_verification_failure_returns_the_case_to_the_department(demo):
    engine = Engine(demo)
    _, number = await resident_report(engine, "zh")
    centre, handler, worker = staff(engine, CENTRE, "zh"), staff(engine, HANDLER, "bo"), staff(engine, WORKER, "zh")
    await centre.run([(Press(f"act:{number}:accept"), []), (Press(f"act:{number}:transfer"), []), (Press("input:urban_management"), [])])
    await handler.run([(Press(f"act:{number}:start_handling"), []), (Press(f"act:{number}:submit_result"), []), ("已修", []),
                       (Press("input:done"), [])])
    await worker.run([
        (Press(f"act:{number}:verify_fail"), "Please give the reason."),
        ("灯还是不亮", "You may send up to {limit} photos, then press Done."),
        (Press("input:done"), "Done. Case {number} is now: {state}"),
    ])
    assert (await notices_for(demo, HANDLER))[-1].message_key == "verify_fail.department"
    async with demo() as session:
        assert (await session.scalar(select(Case).where(Case.number == number))).state == "in_progress"


async def test_reject_with_a_listed_reason_tells_the_resident(demo):
    engine = Engine(demo)
    _, number = await resident_report(engine, "zh")
    centre = staff(engine, CENTRE, "zh")
    await centre.run([
        (Press(f"act:{number}:reject"), ["Choose the reason, or type it.", lambda c: "input:duplicate" in c.buttons()]),
        (Press("input:duplicate"), "Type the number of the case it duplicates."),
        ("LS-20260101-0001", ["Not accept case {number}? This cannot be undone. The resident is told the reason and what they "
                              "can do next. Reason: {reason}", lambda c: "与事件LS-20260101-0001重复" in c.text]),
        (Press("input:confirm"), "Done. Case {number} is now: {state}"),
    ])
    text = await render_last(demo, "resident-zh", "zh")
    assert "LS-20260101-0001" in text
    assert translate("zh", "What you can do: follow case {number}, which is about the same problem.", number="LS-20260101-0001") in text
    assert translate("bo", "Duplicate of case {number}", number="LS-20260101-0001") in await render_last(demo, "resident-zh", "bo")


async def test_extension_escalation_comment_and_prompt(demo):
    engine = Engine(demo)
    _, number = await resident_report(engine, "zh")
    centre, handler, chief = staff(engine, CENTRE, "zh"), staff(engine, HANDLER, "bo"), staff(engine, CHIEF, "zh")
    await centre.run([(Press(f"act:{number}:accept"), []), (Press(f"act:{number}:transfer"), []), (Press("input:urban_management"), [])])
    await handler.run([
        (Press(f"act:{number}:request_extension"), "Please give the reason."),
        ("等待配件", ["How much more time is needed? Choose, or type the new date (for example 2026-12-24).",
                   lambda c: "input:wd:2" in c.buttons()]),
        ("明天", "Please type the date like this: 2026-12-24."),
        (Press("input:wd:2"), "Done. Case {number} is now: {state}"),
        (Press(f"case:{number}"), lambda c: f"act:{number}:request_extension" not in c.buttons()),  # one at a time
    ])
    async with demo() as session:
        before = (await session.scalar(select(Case).where(Case.number == number))).handling_deadline
    assert (await notices_for(demo, CENTRE))[-1].message_key == "request_extension.centre"
    await centre.run([
        (Press(f"case:{number}"), [lambda c: "等待配件" in c.text, lambda c: f"act:{number}:approve_extension" in c.buttons(),
                                  lambda c: f"act:{number}:refuse_extension" in c.buttons()]),
        (Press(f"act:{number}:approve_extension"), "Done. Case {number} is now: {state}"),
    ])
    async with demo() as session:
        after = (await session.scalar(select(Case).where(Case.number == number))).handling_deadline
    assert after > before
    told = await render_last(demo, "resident-zh", "zh")
    assert told.startswith(f"您的事件{number}") and "延长" in told
    await chief.run([
        (Press(f"case:{number}"), lambda c: f"act:{number}:prompt" in c.buttons() and f"act:{number}:accept" not in c.buttons()),
        (Press(f"act:{number}:prompt"), "Please type your note."),
        ("请尽快处理", "Done. Case {number} is now: {state}"),
    ])
    assert (await notices_for(demo, HANDLER))[-1].message_key == "prompt.department"
    _, second = await resident_report(engine, "zh", user="resident-2")
    await centre.run([(Press(f"act:{second}:escalate"), "Done. Case {number} is now: {state}")])
    district = staff(engine, "demo-centre-district", "zh")
    await district.run([(Press("staff:queue"), lambda c: f"case:{second}" in c.buttons())])


ACTIONS_OUT_OF_SCOPE = [
    ("accept", OTHER_CENTRE), ("reject", OTHER_CENTRE), ("escalate", WORKER), ("transfer", HANDLER),
    ("resolve_on_spot", OTHER_WORKER), ("comment", "resident-other"), ("prompt", OTHER_HANDLER),
    ("relay_feedback", OTHER_WORKER), ("accept", "resident-zh"), ("verify_pass", OTHER_WORKER),
]


@pytest.mark.parametrize("trigger,who", ACTIONS_OUT_OF_SCOPE)
async def test_people_outside_their_scope_are_refused_in_the_chat(demo, trigger, who):
    engine = Engine(demo)
    _, number = await resident_report(engine, "zh")
    language = LANGUAGE.get(who, "zh")
    known = who.startswith("demo-") or who == "resident-zh"  # demo staff, or the reporter themself
    outsider = staff(engine, who, language) if known else await start(engine, who, language)
    await outsider.send(Press(f"act:{number}:{trigger}"))
    assert (says(language, outsider.replies, "No case with the number {number} was found among the cases you can see.")
            or says(language, outsider.replies, "This action is not possible now: {reason}")), outsider.text
    async with demo() as session:
        assert (await session.scalar(select(Case).where(Case.number == number))).state == "reported"


async def test_another_persons_case_number_is_not_found(demo):
    engine = Engine(demo)
    _, number = await resident_report(engine, "zh")
    stranger = await start(engine, "stranger", "bo")
    await stranger.run([(number, "No case with the number {number} was found among the cases you can see.")])
    other_worker = staff(engine, OTHER_WORKER, "bo")
    await other_worker.run([(Press(f"case:{number}"), "No case with the number {number} was found among the cases you can see.")])


async def test_phone_is_shown_only_to_those_who_need_it_and_views_are_recorded(demo):
    engine = Engine(demo)
    _, number = await resident_report(engine, "zh")
    worker, centre = staff(engine, WORKER, "zh"), staff(engine, CENTRE, "zh")
    await worker.send(Press(f"case:{number}"))
    assert "13812345678" in worker.text
    await centre.send(Press(f"case:{number}"))
    assert "13812345678" not in centre.text and "138****5678" in centre.text
    async with demo() as session:
        assert await session.scalar(select(func.count()).select_from(CaseView)) == 2


async def test_anonymous_reporter_is_never_shown(demo):
    engine = Engine(demo)
    chat = await start(engine, "anon", "zh")
    transcript = report_transcript("zh")
    await chat.run(transcript[:7] + [(Press("phone:anonymous"), []), (Press("confirm:submit"), [])])
    number = case_number_in(chat)
    worker = staff(engine, WORKER, "zh")
    await worker.run([(Press(f"case:{number}"), "Reporter: anonymous")])


async def test_relay_feedback_from_a_resident(demo):
    engine = Engine(demo)
    _, number = await resident_report(engine, "zh")
    worker = staff(engine, WORKER, "zh")
    await worker.run([
        (Press("staff:feedback"), "Type the case number, for example LS-20261124-0042."),
        (number, "Please type your note."),
        ("居民说晚上特别黑，希望尽快修", "Done. Case {number} is now: {state}"),
    ])
    assert (await notices_for(demo, CENTRE))[-1].message_key == "relay_feedback.centre"


async def make_code(sessionmaker, role=Role.grid_worker, node="5401-D1-01-01-G03", now=None) -> str:
    async with sessionmaker.begin() as session:
        code, _ = await create_invitation(session, role, node_code=node, now=now)
    return code


async def test_invitation_codes_are_single_use_expire_and_can_be_revoked(demo):
    engine = Engine(demo)
    code = await make_code(demo)
    newcomer = await start(engine, "newcomer", "zh")
    await newcomer.run([
        ("/desk", "This is for grid staff. Staff join with an invitation code: /join CODE"),
        (f"/join {code.lower()}", ["Welcome. You now work here as: {role} · {scope}",
                                   "Please type your name as residents will see it on the grid's public notice."]),
        # Grid workers' names and numbers are published on the grid's notice (Art. 20): asked once on joining.
        ("尼玛", "Please share or type the phone number residents can call you on."),
        (Contact("+86 139 0000 1234"), ["Thank you. Residents of your grid will see: {name} {phone}",
                                        lambda c: "staff:patrol" in c.buttons()]),
        (Press("menu:grid"), []),
    ])
    await newcomer.run([("/grid 5401-D1-01-01-G03", lambda c: "尼玛" in c.text and "13900001234" in c.text)])
    second = await start(engine, "second", "bo")
    await second.run([(f"/join {code}", "This invitation code cannot be used. Please ask the administrator for a new one.")])
    old = await make_code(demo, now=utcnow() - timedelta(days=8))
    await second.run([(f"/join {old}", "This invitation code cannot be used. Please ask the administrator for a new one.")])
    await second.run([("/join ZZZZ-ZZZZ-ZZZZ", "This invitation code cannot be used. Please ask the administrator for a new one.")])
    # Revocation takes effect at the next message.
    from storage.staff import find_person, revoke_staff

    async with demo.begin() as session:
        person = await find_person(session, "web:newcomer")
        assert await revoke_staff(session, person.id) == 1
    await newcomer.run([("/desk", "This is for grid staff. Staff join with an invitation code: /join CODE")])


async def test_invitation_scopes_are_checked(demo):
    async with demo.begin() as session:
        with pytest.raises(ValueError):
            await create_invitation(session, Role.grid_worker, node_code="5401-D1-01")  # a township, not a grid
        with pytest.raises(ValueError):
            await create_invitation(session, Role.department_handler, department_code="nope")
        with pytest.raises(ValueError):
            await create_invitation(session, Role.resident)
        code, invitation = await create_invitation(session, Role.centre_staff, node_code="5401-D1-01")
        assert invitation.expires_at - invitation.created_at == timedelta(days=7)
        assert code not in str(invitation.code_hash)  # only the hash is stored


async def test_staff_notes_stay_internal_and_listed_reasons_reach_the_resident_in_tibetan(demo):
    engine = Engine(demo)
    resident, number = await resident_report(engine, "bo")
    centre = staff(engine, CENTRE, "zh")
    chief = staff(engine, CHIEF, "zh")
    await chief.run([(Press(f"act:{number}:comment"), []), ("举报人情绪激动，注意沟通方式", "Done. Case {number} is now: {state}")])
    await centre.run([(Press(f"act:{number}:reject"), []), (Press("input:insufficient"), []),
                      (Press("input:confirm"), "Done. Case {number} is now: {state}")])
    await resident.run([
        (number, [lambda c: "举报人" not in c.text,  # the comment is for staff only
                  ("Reason: {reason}", {"reason": translate("bo", "Insufficient information")})]),
    ])
    await centre.run([(Press(f"case:{number}"), lambda c: "举报人情绪激动" in c.text)])
    assert translate("bo", "Insufficient information") in await render_last(demo, "resident-bo", "bo")


async def test_a_case_number_typed_in_tibetan_digits_is_found(demo):
    engine = Engine(demo)
    resident, number = await resident_report(engine, "bo")
    tibetan = number.translate(str.maketrans("0123456789", "༠༡༢༣༤༥༦༧༨༩"))
    await resident.run([(tibetan, ("Case {number}", {"number": number}))])


async def test_a_join_sent_before_choosing_a_language_is_kept(demo):
    code = await make_code(demo, role=Role.centre_staff, node="5401-D1-01")
    chat = Chat(Engine(demo), "joins-first", "bo")
    await chat.run([
        (f"/join {code}", "Please choose your language."),
        (Press("lang:bo"), ["Welcome. You now work here as: {role} · {scope}", lambda c: "staff:queue" in c.buttons()]),
    ])


async def test_staff_get_the_case_photos_and_its_place(demo):
    engine = Engine(demo)
    _, number = await resident_report(engine, "zh")  # the report carries photo "photo-1", sent over "web"
    worker = staff(engine, WORKER, "zh")
    await worker.send(Press(f"case:{number}"))
    card = worker.replies[0]
    assert [(m["kind"], m["platform"], m["file_id"], m["variant"]) for m in card.media] == [("photo", "web", "photo-1", "original")]
    assert card.location == [29.6558, 91.1220] and "29.655800, 91.122000" in card.text


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_a_department_returns_a_case_that_is_not_theirs(demo, language):
    engine = Engine(demo)
    _, number = await resident_report(engine, language, user=f"resident-{language}")
    centre = staff(engine, CENTRE, "zh")
    await centre.run([(Press(f"act:{number}:accept"), []), (Press(f"act:{number}:transfer"), []), (Press("input:urban_management"), [])])
    handler = staff(engine, HANDLER, "bo")
    await handler.run([
        (Press(f"act:{number}:return_to_centre"), ["Why is it not yours? Choose the reason.",
                                                    lambda c: "input:not_our_duty" in c.buttons()]),
        ("随便", "Please answer with the buttons, or type the text."),
        (Press("input:not_our_duty"), "Please explain to the grid centre, e.g. who should handle it instead."),
        ("供电公司的线路", "Done. Case {number} is now: {state}"),
    ])
    text = await render_last(demo, CENTRE, "zh")
    assert "不属于本部门职责" in text and "供电公司的线路" in text
    await centre.run([
        (Press("staff:queue"), lambda c: f"case:{number}" in c.buttons()),
        (Press(f"case:{number}"), [lambda c: "不属于本部门职责" in c.text, lambda c: f"act:{number}:transfer" in c.buttons()]),
        (Press(f"act:{number}:transfer"), lambda c: c.buttons()[0] == "input:urban_management"),  # the owner first
    ])


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_the_resident_withdraws_a_report(demo, language):
    engine = Engine(demo)
    resident, number = await resident_report(engine, language, user=f"resident-{language}")
    await resident.run([
        (Press(f"case:{number}"), lambda c: f"withdraw:{number}" in c.buttons()),
        (Press(f"withdraw:{number}"), "Do you want to withdraw case {number}? The grid centre will stop working on it. "
                                      "You may type why, or press Withdraw."),
        ("已经修好了" if language == "zh" else "ལེགས་བཅོས་བྱས་ཟིན།", "Case {number} is withdrawn. Thank you for letting us know."),
        (Press(f"case:{number}"), [lambda c: f"withdraw:{number}" not in c.buttons(),
                                  lambda c: translate(language, "Withdrawn by the resident") in c.text]),
    ])
    assert (await notices_for(demo, CENTRE))[-1].message_key == "withdraw.centre"
    second_chat, second = await resident_report(engine, language, user=f"resident-{language}-2")
    centre, handler = staff(engine, CENTRE, "zh"), staff(engine, HANDLER, "bo")
    await centre.run([(Press(f"act:{second}:accept"), []), (Press(f"act:{second}:transfer"), []), (Press("input:urban_management"), [])])
    await second_chat.run([(Press(f"case:{second}"), lambda c: f"withdraw:{second}" in c.buttons()),
                           (Press(f"withdraw:{second}"), lambda c: "confirm:withdraw" in c.buttons())])
    await handler.run([(Press(f"act:{second}:start_handling"), "Done. Case {number} is now: {state}")])
    await second_chat.run([(Press("confirm:withdraw"),
                            "Case {number} can no longer be withdrawn: the department has started handling it.")])
