"""Turning an outbox notification (language-neutral key and parameters) into a message."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.cases import INSUFFICIENT_INFORMATION
from storage.models import Attachment, Case, Department, Matter, Notification
from storage.people import active_roles
from storage.reading import Level, mask_personal_data, reading_for

from . import i18n
from .i18n import N_
from .evidence import media_entry
from .protocol import Button, Reply
from .wording import MEDIA_NAMES, RETURN_REASONS, STAGE_NAMES, localised_reason, next_steps_after_rejection

NOTICES = {
    "report.centre": N_("New report {number} ({matter}) is waiting for acceptance."),
    "report.grid_workers": N_("A new report {number} ({matter}) was filed in your grid."),
    "accept.reporter": N_("Your case {number} ({matter}) has been accepted by the grid centre."),
    "reject.reporter": N_("Your case {number} ({matter}) was not accepted. Reason: {reason}"),
    "escalate.centre": N_("Case {number} ({matter}) was passed up to your grid centre."),
    "refer_to_joint_meeting.reporter": N_("Your case {number} ({matter}) concerns several departments and goes to the joint meeting."),
    "refer_to_joint_meeting.centre": N_("Case {number} ({matter}) was referred to the joint meeting. Reason: {reason}"),
    "transfer.reporter": N_("Your case {number} ({matter}) was sent to {department}. Time limit: {deadline}."),
    "transfer.department": N_("Case {number} ({matter}) was sent to you. Please handle it by {deadline}."),
    "start_handling.reporter": N_("{matter}: the department has started handling your case {number}."),
    "extend_deadline.centre": N_("The time limit of case {number} was extended to {deadline}. Reason: {reason}"),
    "request_extension.centre": N_("The department asks for more time on case {number} ({matter}): until {deadline}. Please approve or refuse it. Reason: {reason}"),
    "approve_extension.reporter": N_("The time limit of your case {number} ({matter}) has been extended. It is now to be handled by {deadline}."),
    "approve_extension.department": N_("Your request for more time on case {number} ({matter}) was approved: handle it by {deadline}."),
    "refuse_extension.department": N_("Your request for more time on case {number} ({matter}) was refused. The time limit stays {deadline}. Reason: {reason}"),
    "return_to_centre.centre": N_("{department} returned case {number} ({matter}) to the grid centre ({listed_reason}). Please send it on. Note: {note}"),
    "withdraw.centre": N_("The resident withdrew case {number} ({matter}). No further work is needed."),
    "withdraw.department": N_("The resident withdrew case {number} ({matter}). No further work is needed."),
    "remind.holder": N_("Reminder: case {number} ({matter}) is due for {stage} by {deadline}."),
    "urge.holder": N_("Urged: the time limit for {stage} of case {number} ({matter}) passed at {deadline}. Please act on it now."),
    "urge.centre": N_("Case {number} ({matter}) is overdue for {stage} (due {deadline}). The people responsible have been urged."),
    "urge.reporter": N_("The time limit for your case {number} ({matter}) passed at {deadline}. The people responsible have been urged to act."),
    "escalate_overdue.supervisor": N_("Case {number} ({matter}) is more than one working day overdue for {stage} (due {deadline}). Your grid centre now supervises it."),
    "escalate_overdue.holder": N_("Case {number} ({matter}) is more than one working day overdue for {stage}. The next level's grid centre now supervises it."),
    "verification_overdue.grid_workers": N_("The on-site check of case {number} ({matter}) was due by {deadline} and is overdue. Please check it now."),
    "verification_overdue.grid_chief": N_("The on-site check of case {number} ({matter}) in your grid was due by {deadline} and is overdue."),
    "submit_result.reporter": N_("The department reported a result for your case {number}: {result}. Your grid worker will confirm it with you."),
    "submit_result.grid_workers": N_("Case {number} ({matter}) has a result and needs your check: {result}"),
    "submit_result.centre": N_("Case {number} ({matter}) has a result: {result}"),
    "verify_pass.reporter": N_("Your case {number} ({matter}) has been checked and closed. Result: {result}. Please rate how it was handled."),
    "verify_pass.department": N_("Case {number} ({matter}) passed the check and is closed."),
    "verify_fail.department": N_("Case {number} ({matter}) failed the check and comes back to you. Reason: {reason}"),
    "verify_fail.centre": N_("Case {number} ({matter}) failed the check. Reason: {reason}"),
    "resolve_on_spot.reporter": N_("Your case {number} ({matter}) was resolved on the spot by the grid worker: {result}"),
    "resolve_on_spot.centre": N_("Case {number} ({matter}) was resolved on the spot: {result}"),
    "reopen.centre": N_("Case {number} ({matter}) was reopened by the resident: {reason}"),
    "reopen.grid_workers": N_("Case {number} ({matter}) in your grid was reopened by the resident: {reason}"),
    "relay_feedback.centre": N_("The grid worker relayed the resident's feedback on case {number}: {note}"),
    "relay_feedback.department": N_("The grid worker relayed the resident's feedback on case {number}: {note}"),
    "prompt.department": N_("Reminder about case {number} ({matter}): {note}"),
    "prompt.grid_workers": N_("Reminder about case {number} ({matter}): {note}"),
    "prompt.centre": N_("Reminder about case {number} ({matter}): {note}"),
    "add_to_case.holders": N_("The resident added to case {number} ({matter}): {addition}"),
    "add_to_case.grid_workers": N_("The resident added to case {number} ({matter}) in your grid: {addition}"),
    "resubmit.centre": N_("The resident added the missing information to case {number} ({matter}); it waits for "
                          "acceptance again: {addition}"),
    "reply_to_resident.reporter": N_("A message about case {number} ({matter}) from the staff handling it: {note}"),
    "merge.reporter": N_("Case {number} ({matter}) repeats case {into}, which was reported earlier: the two were merged. "
                         "You now follow case {into} and will be told what happens."),
}
ACCESS_CODE_LINE = N_("To follow it from another app or phone: {number} · {code}")
FOLLOWED_LINE = N_("About case {number}, which you follow:")
NOT_SHOWN = N_("(not shown)")
NOTE_PARAMS = ("reason", "result", "note")  # what people typed along a step: read by the reading rule


async def readable_params(session: AsyncSession, notification: Notification, params: dict) -> dict:
    """The step's notes as the recipient may read them (storage.reading), at the time of sending."""
    if not any(params.get(k) for k in NOTE_PARAMS):
        return params
    case = await session.get(Case, notification.case_id)
    if case is None:
        return params
    reading = reading_for(notification.recipient_id, await active_roles(session, notification.recipient_id), case)
    level = reading.note_level(notification.message_key.partition(".")[0])
    for key in NOTE_PARAMS:
        if params.get(key) and level == Level.hidden:
            params[key] = None
        elif params.get(key) and level == Level.masked:
            params[key] = mask_personal_data(params[key])
    return params


async def render(session: AsyncSession, language: str, notification: Notification) -> Reply:
    """The notification as a message in `language`, with a button to open the case."""
    params = await readable_params(session, notification, dict(notification.params))
    matter = await session.scalar(select(Matter).where(Matter.code == params.get("matter")))
    params["matter"] = matter.name(language) if matter else params.get("matter", "")
    if params.get("department"):
        department = await session.scalar(select(Department).where(Department.code == params["department"]))
        params["department"] = department.name(language) if department else params["department"]
    stored_reason = params.get("reason") or ""
    if params.get("reason"):
        params["reason"] = localised_reason(language, params["reason"])
    if params.get("stage") in STAGE_NAMES:
        params["stage"] = i18n.translate(language, STAGE_NAMES[params["stage"]])
    if notification.message_key.startswith("return_to_centre.") and params.get("reason") in RETURN_REASONS:
        params["listed_reason"] = i18n.translate(language, RETURN_REASONS[params["reason"]])
    for key in ("deadline", "verify_by"):
        if params.get(key):
            params[key] = i18n.local_time(language, datetime.fromisoformat(params[key]))
    if params.get("content"):  # an addition: its text, or what was sent
        kinds = [i18n.translate(language, MEDIA_NAMES[k]) for k in params["content"].split("+") if k in MEDIA_NAMES]
        params["addition"] = params.get("note") or ", ".join(kinds)
    template = NOTICES.get(notification.message_key)
    if template is None:
        template = N_("There is news about case {number}.")
    wanted = i18n.placeholders(template)
    hidden = i18n.translate(language, NOT_SHOWN)
    text = i18n.translate(language, template, **{k: hidden if params.get(k, "") is None else params.get(k, "")
                                                  for k in wanted})
    media: list[dict] = []
    reporter = False
    case = None
    if notification.message_key.endswith(".reporter"):
        case = await session.get(Case, notification.case_id)
        reporter = case is not None and case.reporter_id == notification.recipient_id  # not a follower
        if reporter and case.access_code and notification.message_key != "merge.reporter":
            text += "\n" + i18n.translate(language, ACCESS_CODE_LINE, number=case.number, code=i18n.digits(language, case.access_code))
        elif case is not None and not reporter:  # the reporter's notice, to someone who follows the case
            text = "👥 " + i18n.translate(language, FOLLOWED_LINE, number=case.number) + "\n" + text
    elif notification.message_key.startswith(("add_to_case.", "resubmit.")):
        # Staff get the photos and voice notes of the addition with the notice, from whatever platform.
        rows = await session.scalars(select(Attachment).where(Attachment.event_id == notification.event_id).order_by(Attachment.id))
        media = [media_entry(a, for_staff=True) for a in rows]
    opened = params.get("into") if notification.message_key == "merge.reporter" else params["number"]
    buttons = [[Button(i18n.translate(language, "Open case {number}", number=opened), f"case:{opened}")]]
    if notification.message_key == "reject.reporter":
        advice, follow = next_steps_after_rejection(language, stored_reason)
        text += "\n\n" + advice
        if follow:
            buttons.insert(0, [Button(i18n.translate(language, "Open case {number}", number=follow), f"case:{follow}")])
        buttons.append([Button(i18n.translate(language, "📝 Report a problem"), "menu:report"),
                        Button(i18n.translate(language, "🏘 My grid"), "menu:grid")])
    if notification.message_key in ("verify_pass.reporter", "resolve_on_spot.reporter"):
        buttons.insert(0, [Button(i18n.translate(language, "⭐ Rate the outcome"), f"rate:{params['number']}")])
    if notification.message_key == "reject.reporter" and reporter and case.state == "rejected" \
            and notification.params.get("reason") == INSUFFICIENT_INFORMATION:
        buttons.insert(0, [Button(i18n.translate(language, "➕ Add the missing information"), f"add:{params['number']}")])
    if notification.message_key == "reply_to_resident.reporter" and reporter:
        buttons.insert(0, [Button(i18n.translate(language, "↩ Answer"), f"add:{params['number']}")])
    return Reply(text=text, buttons=buttons, media=media)
