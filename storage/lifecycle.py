"""The case lifecycle (Art. 17, 24, 25), declared once as data.

report 上报 → accept 受理 → transfer 流转 → handle 办理 → feedback 反馈 → verify 核查 → close.

`TRANSITIONS` is the single source: the state machine, the role check, the
notifications a step causes and the buttons a reader is offered all come from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transitions import Machine, MachineError

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
    State.merged,
]
OPEN_STATES = [s for s in STATES if s not in (State.rejected, State.closed, State.merged)]

GRID_WORKERS = (Role.grid_worker, Role.grid_worker_part_time)
CENTRE = (Role.centre_staff,)
HANDLER = (Role.department_handler,)
OVERSEERS = (Role.grid_chief, Role.grid_instructor)
RESIDENT = (Role.resident,)

# Who is told about a step. Recipients are resolved by the store:
#   reporter      the person who reported (never the actor themself)
#   grid_workers  the workers of the case's grid
#   centre        the staff of the grid centre now in charge
#   department    the handlers of the assigned department
#   overseers     the grid chief and instructors of the case's grid
#   handler_last  the person who last handled the case
#   holders       the staff holding the case now: the department while it handles it, else the centre
# (the reporter's notices also go to the case's followers)
ANY_STATE = "*"

TRANSITIONS: list[dict[str, Any]] = [
    # trigger, source, dest, who may, what it needs, who is told
    dict(trigger="accept", source=[State.reported], dest=State.accepted,
         roles=CENTRE, notify=["reporter"]),
    dict(trigger="reject", source=[State.reported], dest=State.rejected,
         roles=CENTRE, needs=["reason"], notify=["reporter"]),
    dict(trigger="escalate", source=[State.reported, State.accepted], dest=State.reported,
         roles=CENTRE, notify=["centre"]),  # the store finds the next level's centre
    dict(trigger="refer_to_joint_meeting", source=[State.accepted, State.in_progress], dest=State.joint_meeting,
         roles=CENTRE, needs=["reason"], notify=["reporter", "centre"]),
    dict(trigger="transfer", source=[State.accepted, State.joint_meeting], dest=State.transferred,
         roles=CENTRE, needs=["department"], notify=["reporter", "department"]),
    dict(trigger="start_handling", source=[State.transferred], dest=State.in_progress,
         roles=HANDLER, notify=["reporter"]),
    dict(trigger="extend_deadline", source=[State.transferred, State.in_progress], dest=None,
         roles=HANDLER, needs=["reason", "hours"], notify=["centre"]),
    dict(trigger="submit_result", source=[State.in_progress], dest=State.handled,
         roles=HANDLER, needs=["result"], notify=["reporter", "grid_workers", "centre"]),
    # When the matter needs on-site checking, only the grid's workers verify (Art. 17, within 24 h).
    dict(trigger="verify_pass", source=[State.handled], dest=State.closed,
         roles=GRID_WORKERS + CENTRE, onsite_roles=GRID_WORKERS, notify=["reporter", "department"]),
    dict(trigger="verify_fail", source=[State.handled], dest=State.in_progress,
         roles=GRID_WORKERS + CENTRE, onsite_roles=GRID_WORKERS, needs=["reason"], notify=["department", "centre"]),
    dict(trigger="resolve_on_spot", source=[State.reported], dest=State.closed,
         roles=GRID_WORKERS, needs=["result"], notify=["reporter", "centre"]),
    dict(trigger="rate", source=[State.closed], dest=None,
         roles=RESIDENT, needs=["rating"], notify=[]),
    dict(trigger="reopen", source=[State.closed], dest=State.accepted,
         roles=RESIDENT, needs=["reason"], notify=["centre", "grid_workers"]),
    # A resident's feedback gathered in person by the grid worker (Art. 17).
    dict(trigger="relay_feedback", source=ANY_STATE, dest=None,
         roles=GRID_WORKERS, needs=["note"], notify=["centre", "department"]),
    dict(trigger="comment", source=ANY_STATE, dest=None,
         roles=OVERSEERS + CENTRE, needs=["note"], notify=[]),
    dict(trigger="prompt", source=OPEN_STATES, dest=None,
         roles=OVERSEERS, needs=["note"], notify=["department", "grid_workers", "centre"]),
    # The case as a conversation: the resident adds text, photos or a voice note (the store sets
    # `content` from the note or the media); staff write to the resident (回访), unlike a comment.
    dict(trigger="add_to_case", source=OPEN_STATES, dest=None,
         roles=RESIDENT, needs=["content"], notify=["holders", "grid_workers"]),
    # Rejected for insufficient information: the resident adds what was missing (within 7 days) and
    # the case goes back to the grid centre (the store checks the reason and the time).
    dict(trigger="resubmit", source=[State.rejected], dest=State.reported,
         roles=RESIDENT, needs=["content"], notify=["centre"]),
    dict(trigger="reply_to_resident", source=ANY_STATE, dest=None,
         roles=CENTRE + HANDLER + GRID_WORKERS, needs=["note"], notify=["reporter"]),
    # 合并: a repeat report joins the case that carries on; its reporter follows that one.
    dict(trigger="merge", source=[State.reported, State.accepted], dest=State.merged,
         roles=CENTRE, needs=["into"], notify=["reporter"]),
]

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


def triggers_from(state: str) -> list[str]:
    """Every action the lifecycle allows from `state`, in declaration order."""
    return [t["trigger"] for t in TRANSITIONS if t["source"] == ANY_STATE or state in t["source"]]


def roles_for(trigger: str, needs_onsite_verification: bool = False) -> tuple[Role, ...]:
    """Roles that may fire `trigger`; narrower for verification when the matter needs on-site checking."""
    declared = BY_TRIGGER[trigger]
    if needs_onsite_verification and "onsite_roles" in declared:
        return declared["onsite_roles"]
    return declared["roles"]
