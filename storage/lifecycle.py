"""The case lifecycle (Art. 17, 24, 25), declared once as data.

report 上报 → accept 受理 → transfer 流转 → handle 办理 → feedback 反馈 → verify 核查 → close.

`TRANSITIONS` is the single source: the state machine, the role check, the
notifications a step causes and the buttons a reader is offered all come from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from transitions import Machine, MachineError

from .matters import about_particular_people
from .models import Role


class State:
    reported = "reported"  # 上报: waiting for the grid centre
    accepted = "accepted"  # 受理
    rejected = "rejected"  # 不予受理 (with a reason)
    joint_meeting = "joint_meeting"  # 提交联席会议 (Art. 24)
    transferred = "transferred"  # 流转: sent to a department
    in_progress = "in_progress"  # 办理
    handled = "handled"  # 反馈: result in, waiting for verification 核查
    closed = "closed"  # 办结
    withdrawn = "withdrawn"  # 撤回: the resident withdrew the report before handling started
    merged = "merged"  # 合并: a repeat of another case, which carries on


STATES = [
    State.reported,
    State.accepted,
    State.rejected,
    State.joint_meeting,
    State.transferred,
    State.in_progress,
    State.handled,
    State.closed,
    State.withdrawn,
    State.merged,
]
CLOSED_STATES = [State.rejected, State.closed, State.withdrawn, State.merged]
OPEN_STATES = [s for s in STATES if s not in CLOSED_STATES]
HANDLING = [State.transferred, State.in_progress]

GRID_WORKERS = (Role.grid_worker, Role.grid_worker_part_time)
FULL_TIME_WORKERS = (Role.grid_worker,)  # 专职: part-time workers (兼职) assist, they do not verify or close (Art. 13)
CENTRE = (Role.centre_staff,)
HANDLER = (Role.department_handler,)
OVERSEERS = (Role.grid_chief, Role.grid_instructor)
RESIDENT = (Role.resident,)
SYSTEM = (Role.system,)  # the supervision sweep: time limits that act (限时办结)

# Who is told about a step. Recipients are resolved by the store:
#   reporter      the person who reported (never the actor themself)
#   grid_workers  the workers of the case's grid
#   centre        the staff of the grid centre now in charge
#   department    the handlers of the assigned department
#   overseers     the grid chief and instructors of the case's grid
#   holder        whoever holds the case in its current stage (see STAGES)
#   holders       the staff holding the case now: the department while it handles it, else the centre
#   supervisor    the staff of the next level's grid centre supervising an overdue case
#   grid_chief    the grid chief of the case's grid
# (the reporter's notices also go to the case's followers)
ANY_STATE = "*"

# Listed reasons a department returns a case that is not theirs (退单).
RETURN_REASONS = ("not_our_area", "ownership_unclear", "overlapping_duties", "not_our_duty")

TRANSITIONS: list[dict[str, Any]] = [
    # trigger, source, dest, who may, what it needs, who is told; `starts` begins a stage's
    # time limit (STAGES), `guards` name conditions on the case (GUARDS), `optional` inputs.
    dict(trigger="accept", source=[State.reported], dest=State.accepted,
         roles=CENTRE, notify=["reporter"]),
    dict(trigger="reject", source=[State.reported], dest=State.rejected,
         roles=CENTRE, needs=["reason"], notify=["reporter"]),
    dict(trigger="escalate", source=[State.reported, State.accepted], dest=State.reported,
         roles=CENTRE, notify=["centre"], starts="accept"),  # the store finds the next level's centre
    dict(trigger="refer_to_joint_meeting", source=[State.accepted, State.in_progress], dest=State.joint_meeting,
         roles=CENTRE, needs=["reason"], notify=["reporter", "centre"]),
    dict(trigger="transfer", source=[State.accepted, State.joint_meeting], dest=State.transferred,
         roles=CENTRE, needs=["department"], notify=["reporter", "department"], starts="handle"),
    dict(trigger="start_handling", source=[State.transferred], dest=State.in_progress,
         roles=HANDLER, notify=["reporter"]),
    # 延期: the department asks before its deadline; only the centre's approval moves it.
    dict(trigger="request_extension", source=HANDLING, dest=None,
         roles=HANDLER, needs=["reason", "deadline"], optional=["hours", "working_days"],
         guards=["no_extension_pending", "before_deadline", "extensions_left"], notify=["centre"]),
    dict(trigger="approve_extension", source=HANDLING, dest=None,
         roles=CENTRE, guards=["extension_pending"], notify=["reporter", "department"], starts="handle"),
    dict(trigger="refuse_extension", source=HANDLING, dest=None,
         roles=CENTRE, needs=["reason"], guards=["extension_pending"], notify=["department"]),
    # 退单: not ours; back to the centre's queue as accepted, to be transferred again.
    dict(trigger="return_to_centre", source=HANDLING, dest=State.accepted,
         roles=HANDLER, needs=["reason", "note"], notify=["centre"]),
    dict(trigger="submit_result", source=[State.in_progress], dest=State.handled,
         roles=HANDLER, needs=["result"], notify=["reporter", "grid_workers", "centre"], starts="verify"),
    # When the matter needs on-site checking, only the grid's workers verify (Art. 17, within 24 h).
    dict(trigger="verify_pass", source=[State.handled], dest=State.closed,
         roles=FULL_TIME_WORKERS + CENTRE, onsite_roles=FULL_TIME_WORKERS, notify=["reporter", "department"],
         starts="rate"),
    dict(trigger="verify_fail", source=[State.handled], dest=State.in_progress,
         roles=FULL_TIME_WORKERS + CENTRE, onsite_roles=FULL_TIME_WORKERS, needs=["reason"], notify=["department", "centre"],
         starts="handle"),  # rework gets the matter's time limit again
    dict(trigger="resolve_on_spot", source=[State.reported], dest=State.closed,
         roles=FULL_TIME_WORKERS, needs=["result"], notify=["reporter", "centre"], starts="rate"),
    dict(trigger="withdraw", source=[State.reported, State.accepted, State.joint_meeting, State.transferred],
         dest=State.withdrawn, roles=RESIDENT, optional=["reason"], notify=["centre", "department"]),
    dict(trigger="rate", source=[State.closed], dest=None,
         roles=RESIDENT, needs=["rating"], optional=["comment"], notify=[]),
    dict(trigger="reopen", source=[State.closed], dest=State.accepted,
         roles=RESIDENT, needs=["reason"], notify=["centre", "grid_workers"]),
    # A resident's feedback gathered in person by the grid worker (Art. 17).
    dict(trigger="relay_feedback", source=ANY_STATE, dest=None,
         roles=GRID_WORKERS, needs=["note"], notify=["centre", "department"]),
    dict(trigger="comment", source=ANY_STATE, dest=None,
         roles=GRID_WORKERS + OVERSEERS + CENTRE, needs=["note"], notify=[]),
    dict(trigger="prompt", source=OPEN_STATES, dest=None,
         roles=OVERSEERS, needs=["note"], notify=["department", "grid_workers", "centre"]),
    # The case as a conversation: the resident adds text, photos or a voice note (the store sets
    # `content` from the note or the media); staff write to the resident (回访), unlike a comment.
    dict(trigger="add_to_case", source=OPEN_STATES, dest=None,
         roles=RESIDENT, needs=["content"], notify=["holders", "grid_workers"]),
    # Rejected for insufficient information: the resident adds what was missing (within 7 days) and
    # the case goes back to the grid centre (the store checks the reason and the time).
    dict(trigger="resubmit", source=[State.rejected], dest=State.reported,
         roles=RESIDENT, needs=["content"], notify=["centre"], starts="accept"),
    dict(trigger="reply_to_resident", source=ANY_STATE, dest=None,
         roles=CENTRE + HANDLER + GRID_WORKERS, needs=["note"], notify=["reporter"]),
    # 合并: a repeat report joins the case that carries on; its reporter follows that one.
    dict(trigger="merge", source=[State.reported, State.accepted], dest=State.merged,
         roles=CENTRE, needs=["into"], notify=["reporter"]),
    # The grid centre writes the public wording of a case for Open311 (never for matters about particular people).
    dict(trigger="publish", source=ANY_STATE, dest=None,
         roles=CENTRE, needs=["public_text"], guards=["publishable"], notify=[]),
    # Milestones of a stage's time limit, fired by the supervision sweep (storage.supervision).
    dict(trigger="remind", source=[State.reported, *HANDLING, State.handled], dest=None,
         roles=SYSTEM, notify=["holder"]),
    dict(trigger="urge", source=[State.reported, *HANDLING], dest=None,  # 催办
         roles=SYSTEM, notify=["holder", "centre", "reporter"]),
    dict(trigger="escalate_overdue", source=[State.reported, *HANDLING], dest=None,
         roles=SYSTEM, notify=["supervisor", "holder"]),
    dict(trigger="verification_overdue", source=[State.handled], dest=None,
         roles=SYSTEM, notify=["grid_workers", "grid_chief"]),
]

SYSTEM_TRIGGERS = [t["trigger"] for t in TRANSITIONS if t["roles"] == SYSTEM]


@dataclass(frozen=True)
class Stage:
    """A stretch of the case flow with a time limit: who holds the case then, and its milestones.

    `milestones` are (trigger, when): when is a fraction of the limit ("remind" at 75 % by default,
    `GRIDBOT_REMIND_AT`), "deadline", or "deadline+1wd" (one working day after it).
    """

    name: str
    states: tuple[str, ...]
    holder: str
    deadline_field: str
    milestones: tuple[tuple[str, str], ...]


REMIND, AT_DEADLINE, DAY_AFTER = "remind_at", "deadline", "deadline+1wd"
STAGES: list[Stage] = [
    # 受理: the grid centre accepts within the matter's acceptance limit (default 2 working hours).
    Stage("accept", (State.reported,), "centre", "accept_deadline",
          (("remind", REMIND), ("urge", AT_DEADLINE), ("escalate_overdue", DAY_AFTER))),
    # 办理: the department handles within the matter's time limit (限时办结).
    Stage("handle", tuple(HANDLING), "department", "handling_deadline",
          (("remind", REMIND), ("urge", AT_DEADLINE), ("escalate_overdue", DAY_AFTER))),
    # 核查: the grid's workers verify on site within 24 hours (Art. 17).
    Stage("verify", (State.handled,), "grid_workers", "verification_deadline",
          (("remind", REMIND), ("verification_overdue", AT_DEADLINE))),
    # 评价: the resident may rate, and reopen when unsatisfied, within 7 days.
    Stage("rate", (State.closed,), "reporter", "rating_deadline", ()),
]
STAGE_BY_NAME = {s.name: s for s in STAGES}


def stage_of(state: str) -> Stage | None:
    """The stage a case in `state` is in, if that state has a time limit."""
    return next((s for s in STAGES if state in s.states), None)


# Conditions on the case (beyond its state) that an action needs; each with the refusal's code.
GUARDS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "extension_pending": (lambda case, now: case.pending_extension is not None, "no_extension_pending"),
    "no_extension_pending": (lambda case, now: case.pending_extension is None, "extension_already_pending"),
    "before_deadline": (
        lambda case, now: case.handling_deadline is None or now < case.handling_deadline, "deadline_passed"),
    "extensions_left": (lambda case, now: (case.extension_count or 0) < max_extensions(), "too_many_extensions"),
    "publishable": (lambda case, now: not about_particular_people(case.matter), "not_publishable"),
}


def max_extensions() -> int:
    """How many extensions one case may be granted (`GRIDBOT_MAX_EXTENSIONS`, default 2)."""
    return int(os.environ.get("GRIDBOT_MAX_EXTENSIONS", "2"))


def refused_guard(trigger: str, case: Any, now: Any) -> str | None:
    """The code of the first guard of `trigger` that the case does not meet, or None."""
    for name in BY_TRIGGER[trigger].get("guards", []):
        check, code = GUARDS[name]
        if not check(case, now):
            return code
    return None


BY_TRIGGER: dict[str, dict[str, Any]] = {t["trigger"]: t for t in TRANSITIONS}


class CaseError(Exception):
    """A domain error with a stable code; nothing was changed."""

    code = "case_error"

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.details = details


class NotAllowedInState(CaseError):
    code = "not_allowed_in_state"


class NotPermitted(CaseError):
    code = "not_permitted"


class MissingInput(CaseError):
    code = "missing_input"


class ConcurrentChange(CaseError):
    code = "concurrent_change"


class CaseNotFound(CaseError):
    code = "case_not_found"


class MatterNotPublished(CaseError):
    code = "matter_not_published"


class Refused(CaseError):
    """A guard of the action is not met (e.g. an extension after the deadline); `code` says which."""

    def __init__(self, code: str, message: str, **details: Any):
        super().__init__(message, **details)
        self.code = code


@dataclass
class Step:
    """What one trigger gets: the case's state holder for the machine, plus the inputs."""

    state: str
    inputs: dict[str, Any] = field(default_factory=dict)


def _check_inputs(event) -> bool:
    step: Step = event.model
    missing = [name for name in BY_TRIGGER[event.event.name].get("needs", []) if step.inputs.get(name) in (None, "")]
    if missing:
        raise MissingInput(f"{event.event.name} needs {', '.join(missing)}", missing=missing)
    return True


def _build_machine() -> Machine:
    machine = Machine(
        model=None,
        states=STATES,
        initial=State.reported,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
        model_attribute="state",
    )
    for t in TRANSITIONS:
        source = STATES if t["source"] == ANY_STATE else t["source"]
        machine.add_transition(t["trigger"], source, t["dest"], conditions=[_check_inputs])
    return machine


MACHINE = _build_machine()


def fire(trigger: str, state: str, inputs: dict[str, Any]) -> str:
    """Run `trigger` from `state` and return the new state; raise a CaseError if refused."""
    if trigger not in BY_TRIGGER:
        raise NotAllowedInState(f"unknown action {trigger!r}", action=trigger, state=state)
    step = Step(state=state, inputs=inputs)
    MACHINE.add_model(step, initial=state)
    try:
        getattr(step, trigger)()
    except MachineError as exc:
        raise NotAllowedInState(f"{trigger} is not allowed while the case is {state}", action=trigger, state=state) from exc
    finally:
        MACHINE.remove_model(step)
    return step.state


def sources(trigger: str) -> list[str]:
    """The states `trigger` may fire from."""
    declared = BY_TRIGGER[trigger]["source"]
    return STATES if declared == ANY_STATE else declared


def triggers_from(state: str) -> list[str]:
    """Every action the lifecycle allows from `state`, in declaration order."""
    return [t["trigger"] for t in TRANSITIONS if t["source"] == ANY_STATE or state in t["source"]]


def roles_for(trigger: str, needs_onsite_verification: bool = False) -> tuple[Role, ...]:
    """Roles that may fire `trigger`; narrower for verification when the matter needs on-site checking."""
    declared = BY_TRIGGER[trigger]
    if needs_onsite_verification and "onsite_roles" in declared:
        return declared["onsite_roles"]
    return declared["roles"]
