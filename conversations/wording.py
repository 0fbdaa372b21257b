"""Plain-language names for states, actions and roles, marked for translation."""

from __future__ import annotations

import re

from storage.reading import INTERNAL, NOTE_KINDS

from .i18n import N_, translate

STATE_NAMES = {
    "reported": N_("Reported, waiting for the grid centre"),
    "accepted": N_("Accepted by the grid centre"),
    "rejected": N_("Not accepted"),
    "joint_meeting": N_("Referred to the joint meeting"),
    "transferred": N_("Sent to the department"),
    "in_progress": N_("Being handled"),
    "handled": N_("Result in, waiting for verification"),
    "closed": N_("Closed"),
    "withdrawn": N_("Withdrawn by the resident"),
    "merged": N_("Merged into another case"),
}

# What happened, as the resident reads it in the case's timeline.
ACTION_NAMES = {
    "report": N_("Report filed"),
    "accept": N_("Accepted by the grid centre"),
    "reject": N_("Not accepted"),
    "escalate": N_("Passed up to the next level's grid centre"),
    "refer_to_joint_meeting": N_("Referred to the joint meeting of departments"),
    "transfer": N_("Sent to {department}"),
    "start_handling": N_("The department started handling it"),
    "extend_deadline": N_("Time limit extended"),
    "request_extension": N_("The department asked for more time"),
    "approve_extension": N_("Time limit extended"),
    "refuse_extension": N_("Request for more time refused"),
    "return_to_centre": N_("Returned to the grid centre to be sent on"),
    "withdraw": N_("Withdrawn by the resident"),
    "remind": N_("Reminder: the time limit is near"),
    "urge": N_("Time limit passed: the people responsible were urged"),
    "escalate_overdue": N_("Overdue: the next level's grid centre now supervises it"),
    "verification_overdue": N_("The on-site check is overdue"),
    "submit_result": N_("The department reported its result"),
    "verify_pass": N_("Checked and confirmed; case closed"),
    "verify_fail": N_("Check failed; sent back for more work"),
    "resolve_on_spot": N_("Resolved on the spot by the grid worker"),
    "rate": N_("Rated by the resident"),
    "reopen": N_("Reopened after an unsatisfied rating"),
    "relay_feedback": N_("Feedback from the resident, relayed by the grid worker"),
    "comment": N_("Comment"),
    "prompt": N_("Reminder to the people responsible"),
    "add_to_case": N_("Added by the resident"),
    "resubmit": N_("Missing information added by the resident; back to the grid centre"),
    "reply_to_resident": N_("Message to the resident"),
    "merge": N_("Merged into case {number}, which carries on"),
    "merged_in": N_("Case {number}, a repeat of this one, was merged into it"),
    "publish": N_("The grid centre published a wording for the public"),
}

# Notes only staff read (Art. 19); labelled so in the staff's timeline.
INTERNAL_NOTES = tuple(action for action, kind in NOTE_KINDS.items() if kind == INTERNAL)
MEDIA_NAMES = {"photo": N_("📷 photo"), "voice": N_("🎤 voice note")}

ROLE_NAMES = {
    "resident": N_("Resident"),
    "grid_worker": N_("Grid worker"),
    "grid_worker_part_time": N_("Part-time grid worker"),
    "grid_chief": N_("Grid chief"),
    "grid_instructor": N_("Grid instructor"),
    "centre_staff": N_("Grid centre"),
    "department_handler": N_("Department"),
    "administrator": N_("Administrator"),
    "system": N_("Supervision (automatic)"),
}

# The stages with a time limit (storage.lifecycle.STAGES), as a notice names them.
STAGE_NAMES = {
    "accept": N_("acceptance"),
    "handle": N_("handling"),
    "verify": N_("the on-site check"),
    "rate": N_("rating"),
}
# "… by {time}" on a case card, per stage.
DEADLINE_LABELS = {
    "accept": N_("To be accepted by: {time}"),
    "handle": N_("To be handled by: {time}"),
    "verify": N_("To be checked on site by: {time}"),
    "rate": N_("You may rate it until: {time}"),
}
# Why a department gives a case back to the grid centre (退单); the store keeps the code.
RETURN_REASONS = {
    "not_our_area": N_("Not in our area"),
    "ownership_unclear": N_("Ownership unclear"),
    "overlapping_duties": N_("Overlapping duties"),
    "not_our_duty": N_("Not this department's duty"),
}


RATING_NAMES = {
    "satisfied": N_("Satisfied"),
    "basically_satisfied": N_("Basically satisfied"),
    "unsatisfied": N_("Unsatisfied"),
}

# Reasons picked from a list are stored in the official language (Chinese); STORED_REASONS maps that
# stored text back to its message id so that each reader sees it in their own language.
REJECT_REASONS = {
    "not_listed": N_("Not on the matter list"),
    "jurisdiction": N_("Outside our jurisdiction"),
    "duplicate": N_("Duplicate of another case"),
    "insufficient": N_("Insufficient information"),
}
UNSATISFIED_WITHOUT_COMMENT = N_("Unsatisfied")
STORED_REASONS = {translate("zh", msgid): msgid for msgid in [*REJECT_REASONS.values(), UNSATISFIED_WITHOUT_COMMENT]}
DUPLICATE_OF = N_("Duplicate of case {number}")
_DUPLICATE = re.compile(re.escape(translate("zh", DUPLICATE_OF)).replace(re.escape("{number}"), r"(LS-\d{8}-\d{4,})"))


def stored_reason(number: str) -> str:
    """A 'duplicate of case N' reason, as stored (in the official language)."""
    return translate("zh", DUPLICATE_OF, number=number)


def duplicate_number(note: str) -> str | None:
    """The case a 'duplicate of case N' reason points at."""
    match = _DUPLICATE.fullmatch(note or "")
    return match.group(1) if match else None


# What a resident can do after a case was not accepted, by the reason given.
NEXT_STEPS_AFTER_REJECTION = {
    "insufficient": N_("What you can do: report it again with what was missing (what exactly, where, since when), "
                       "or add a photo."),
    "duplicate": N_("What you can do: follow case {number}, which is about the same problem."),
    "other": N_("What you can do: if you think this is wrong, call your grid's supervision and reporting phone "
                "(under My grid), or report it again with more details."),
}


def next_steps_after_rejection(language: str, stored: str) -> tuple[str, str | None]:
    """The advice for a resident whose case was not accepted, and the case to follow instead, if any."""
    number = duplicate_number(stored)
    if number:
        return translate(language, NEXT_STEPS_AFTER_REJECTION["duplicate"], number=number), number
    key = "insufficient" if stored == translate("zh", REJECT_REASONS["insufficient"]) else "other"
    return translate(language, NEXT_STEPS_AFTER_REJECTION[key]), None


def localised_reason(language: str, note: str) -> str:
    """A reason as stored (listed reasons in the official language) in the reader's language."""
    if note in STORED_REASONS:
        return translate(language, STORED_REASONS[note])
    match = _DUPLICATE.fullmatch(note)
    return translate(language, DUPLICATE_OF, number=match.group(1)) if match else note
