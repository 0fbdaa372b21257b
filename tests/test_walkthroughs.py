"""The walkthroughs of issue 14 as transcripts, in Chinese and in Tibetan: where people got stuck or misled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from conversations.engine import Engine
from conversations.i18n import translate
from storage.models import Case, CaseSource
from storage.timeutil import utcnow
from tests.test_dialogs_resident import GRID_POINT, STREET_LIGHT, case_number_in, report_transcript, start
from tests.test_dialogs_staff import CENTRE, OTHER_WORKER, WORKER, make_code, notices_for, render_last, resident_report, staff
from tests.transcript import Chat, Location, Press, PressOld

G01, G02 = "5401-D1-01-01-G01", "5401-D1-01-01-G02"
IN_G02 = (29.6558, 91.1265)
WELCOME_STAFF = "Welcome. You now work here as: {role} · {scope}"


async def switch_language(chat: Chat, language: str) -> None:
    chat.language = language
    await chat.run([("/language", "Please choose your language."), (Press(f"lang:{language}"), "Language changed.")])


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_start_then_join_while_the_language_question_is_open_keeps_the_join(demo, language):
    code = await make_code(demo)
    chat = Chat(Engine(demo), f"new-staff-{language}", language)
    await chat.run([
        ("/start", "Please choose your language."),
        (f"/join {code}", "Please choose your language."),
        (Press(f"lang:{language}"), [WELCOME_STAFF, "Please type your name as residents will see it on the grid's public notice."]),
    ])


@pytest.mark.parametrize("language, worker, point, other", [("zh", WORKER, IN_G02, G02), ("bo", OTHER_WORKER, GRID_POINT, G01)])
async def test_patrol_in_a_neighbouring_grid_is_said_at_the_location_and_logged_for_that_grid(demo, language, worker, point, other):
    chat = staff(Engine(demo), worker, language)
    description = "巡查发现路灯不亮" if language == "zh" else "ལམ་སྒྲོན་མི་འབར་བ་རྙེད་བྱུང་།"
    other_grid_question = ("This place is in {grid}, which is not one of your grids. You can log it for that grid: its grid "
                           "workers and its grid work organ are told and take it from there. Or choose another place.")
    await chat.run([
        (Press("staff:patrol"), []),
        (Press(f"matter:{STREET_LIGHT}"), []),
        (description, []),
        (Location(*point), [other_grid_question, lambda c: {"other_grid:log", "other_grid:place"} <= set(c.buttons())]),
        (Press("other_grid:place"), "Where is the problem? Share your location with the button below, or choose the place step by step."),
        (Location(*point), other_grid_question),
        (Press("other_grid:log"), ["Grid: {grid}", "Add an address or a landmark (building, street, door number) so the grid worker finds it, or skip."]),
        (Press("address:skip"), []),
        (Press("photos:done"), []),
        (Press("residents:skip"), ["It will be reported to the grid it belongs to.",
                                   lambda c: "outcome:report" in c.buttons() and "outcome:resolved" not in c.buttons()]),
        (Press("outcome:report"), "Case {number} is logged for {grid}; its grid workers and its grid work organ have been told."),
    ])
    async with demo() as session:
        case = await session.scalar(select(Case).where(Case.number == case_number_in(chat)))
        assert case.grid.code == other and case.source == CaseSource.resident_report and case.state == "reported"
    other_worker = OTHER_WORKER if worker == WORKER else WORKER
    assert (await notices_for(demo, other_worker))[-1].message_key == "report.grid_workers"


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_rejecting_asks_first_and_the_resident_is_told_what_to_do_next(demo, language):
    engine = Engine(demo)
    resident, number = await resident_report(engine, language)
    centre = staff(engine, CENTRE, "zh")
    if language == "bo":
        await switch_language(centre, "bo")
    confirm = ("Not accept case {number}? This cannot be undone. The resident is told the reason and what they can do next. "
               "Reason: {reason}")
    await centre.run([
        (Press(f"act:{number}:reject"), "Choose the reason, or type it."),
        (Press("input:insufficient"), [confirm, lambda c: c.buttons() == ["input:confirm", "nav:cancel"]]),
        (Press("nav:cancel"), ["Cancelled. Nothing was changed.", "Case {number}", lambda c: f"act:{number}:reject" in c.buttons()]),
        (Press(f"act:{number}:reject"), []),
        (Press("input:insufficient"), confirm),
        (Press("input:confirm"), "Done. Case {number} is now: {state}"),
    ])
    advice = "What you can do: report it again with what was missing (what exactly, where, since when), or add a photo."
    notice = await render_last(demo, f"resident-{language}", language)
    assert translate(language, advice) in notice
    await resident.run([(number, advice)])  # the case card says it too


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_old_buttons_answer_with_where_things_stand(demo, language):
    chat = await start(Engine(demo), f"old-buttons-{language}", language)
    await chat.run(report_transcript(language))
    await chat.run([
        (PressOld("confirm:submit"), ["That button belongs to a step that is already finished. What would you like to do now?",
                                      "What would you like to do?"]),
        (Press("menu:report"), []),
        (Press(f"matter:{STREET_LIGHT}"), "Please describe the problem in a few sentences: what is wrong, since when, who is affected. "
                                          "(at most {limit} characters)"),
        (PressOld("matter:GM-0302"), ["That button belongs to an earlier step. Here is where we are now:",
                                      "Please describe the problem in a few sentences: what is wrong, since when, who is affected. "
                                      "(at most {limit} characters)"]),
        (PressOld(f"place:{G01}"), "That button belongs to an earlier step. Here is where we are now:"),
    ])


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_my_cases_name_the_matter_and_safety_matters_give_the_emergency_numbers(demo, language):
    engine = Engine(demo)
    chat, number = await resident_report(engine, language)
    async with demo() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
        matter_name = case.matter.name(language)
    emergency = ("In danger right now? Call {fire} (fire), {police} (police) or {ambulance} (ambulance) first: "
                 "this report does not reach them at once.")
    await chat.run([
        (Press("menu:cases"), lambda c: any(matter_name in label and number in label for r in c.replies for label in r.button_labels())),
        (Press("menu:report"), []),
        (Press(f"matter:{STREET_LIGHT}"), lambda c: "119" not in c.text),
        (Press("nav:back"), []),
        (Press("page:1"), []),
        (Press("matter:GM-0601"), [(emergency, {"fire": "119", "police": "110", "ambulance": "120"})]),
    ])


@pytest.mark.parametrize("language, typed, expected", [
    ("zh", "路面有一个大坑，车辆经过很危险", "GM-0603"),
    ("bo", "ལམ་ཁ་ལ་ཁུང་བུ་ཆེན་པོ་ཞིག་འདུག མོ་ཏ་འགྲོ་དུས་ཉེན་ཁ་ཆེ", "GM-0603"),
    ("bo", "lam kha la khung bu chen po zhig 'dug", "GM-0603"),  # Wylie, matched as Tibetan
])
async def test_a_few_plain_words_find_the_kind_of_problem(demo, language, typed, expected):
    chat = await start(Engine(demo), f"suggest-{language}-{len(typed)}", language)
    await chat.run([
        (Press("menu:report"), []),
        (typed, ["Is it one of these?", lambda c: c.buttons()[0] == f"matter:{expected}"]),
    ])


async def test_wylie_description_is_offered_in_tibetan_script_and_pinyin_is_not(demo):
    engine = Engine(demo)
    chat = await start(engine, "wylie-bo", "bo")
    wylie_question = "It looks like you typed Tibetan in Latin letters (Wylie). Did you mean:\n\n{tibetan}"
    await chat.run([
        (Press("menu:report"), []),
        (Press(f"matter:{STREET_LIGHT}"), []),
        ("Nyin 3 ring lam sgron 'bar gyi mi 'dug, g.yas phyogs su", (wylie_question, {"tibetan": "ཉིན་༣་རིང་ལམ་སྒྲོན་འབར་གྱི་མི་འདུག གཡས་ཕྱོགས་སུ"})),
        (Press("wylie:yes"), "Where is the problem? Share your location with the button below, or choose the place step by step."),
        (Press("nav:back"), []),
        ("ta ma de lu deng huai le", "Where is the problem? Share your location with the button below, or choose the place step by step."),
    ])


async def test_a_description_in_both_languages_is_recorded_as_mixed(demo):
    engine = Engine(demo)
    chat = await start(engine, "mixed-zh", "zh")
    transcript = report_transcript("zh")
    transcript[2] = ("布达拉宫附近的ལམ་སྒྲོན་坏了好几天", transcript[2][1])
    await chat.run(transcript)
    async with demo() as session:
        case = await session.scalar(select(Case).where(Case.number == case_number_in(chat)))
    assert case.description_language == "mixed"


async def test_the_idle_notice_counts_minutes_in_tibetan_digits(demo):
    engine = Engine(demo)
    chat = await start(engine, "idle-bo", "bo")
    await chat.run([(Press("menu:report"), []), (Press(f"matter:{STREET_LIGHT}"), [])])
    engine.clock = lambda: utcnow() + timedelta(minutes=31)
    await chat.run([("ཡང་བསྐྱར", [("Your unfinished report was put aside after {minutes} minutes without an answer. "
                                   "It is kept for 24 hours.", {"minutes": "༣༠"})])])


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_the_staff_phone_step_does_not_offer_anonymity(demo, language):
    code = await make_code(demo)
    chat = await start(Engine(demo), f"staff-phone-{language}", language)
    wrong = "That does not look like a phone number. Type digits only, for example 13800000000."
    await chat.run([
        (f"/join {code}", WELCOME_STAFF),
        ("次仁" if language == "zh" else "ཚེ་རིང", "Please share or type the phone number residents can call you on."),
        ("123", [wrong, lambda c: translate(language, "That does not look like a phone number. Type digits only, for example "
                                            "13800000000, or stay anonymous.") not in c.text]),
        ("13800000021", "Thank you. Residents of your grid will see: {name} {phone}"),
    ])
