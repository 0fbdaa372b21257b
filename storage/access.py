"""Who may see and do what with a case (Art. 19: each person sees only what their role needs)."""

from __future__ import annotations

from datetime import datetime

from .lifecycle import BY_TRIGGER, refused_guard, roles_for, triggers_from
from .models import Case, Role, RoleAssignment
from .timeutil import utcnow

GRID_ROLES = (Role.grid_worker, Role.grid_worker_part_time, Role.grid_chief, Role.grid_instructor)

def covers(assignment: RoleAssignment, case: Case) -> bool:
    """Does this role assignment's scope include the case?"""
    role = assignment.role
    if role in GRID_ROLES:
        return assignment.node is not None and assignment.node.contains(case.grid)
    if role == Role.centre_staff:
        # The centre now in charge, or a centre above it; or the next level supervising an overdue case.
        if assignment.node is None:
            return False
        supervising = case.supervising_node
        return assignment.node.contains(case.centre_node) or (supervising is not None and assignment.node.contains(supervising))
    if role == Role.department_handler:
        return case.department_id is not None and assignment.department_id == case.department_id
    return False


def is_follower(person_id: int, case: Case) -> bool:
    """A supporter of the case, a merged repeat's reporter, or someone who opened it with its access code."""
    return any(f.person_id == person_id for f in case.followers)


def can_view(person_id: int, assignments: list[RoleAssignment], case: Case) -> bool:
    if case.reporter_id == person_id or is_follower(person_id, case):
        return True
    for assignment in assignments:
        if covers(assignment, case):
            return True
        # A centre keeps reading cases of its area after escalating them upwards.
        if assignment.role == Role.centre_staff and assignment.node is not None and assignment.node.contains(case.grid):
            return True
    return False


def acting_role(person_id: int, assignments: list[RoleAssignment], case: Case, trigger: str) -> Role | None:
    """The role in which the person may fire `trigger` on the case, or None."""
    if trigger not in BY_TRIGGER:
        return None
    allowed = roles_for(trigger, case.matter.needs_onsite_verification)
    if Role.resident in allowed and case.reporter_id == person_id:
        return Role.resident
    for assignment in assignments:
        if assignment.role in allowed and covers(assignment, case):
            return assignment.role
    return None


def allowed_actions(person_id: int, assignments: list[RoleAssignment], case: Case, now: datetime | None = None) -> list[str]:
    """The lifecycle's actions from the case's state (and its guards) that this person may take, in declared order."""
    now = now or utcnow()
    return [
        t for t in triggers_from(case.state)
        if acting_role(person_id, assignments, case, t) is not None and refused_guard(t, case, now) is None
    ]
