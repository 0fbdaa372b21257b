"""Who may see and do what with a case (Art. 19: each person sees only what their role needs)."""

from __future__ import annotations

from .lifecycle import BY_TRIGGER, roles_for, triggers_from
from .models import Case, Role, RoleAssignment

GRID_ROLES = (Role.grid_worker, Role.grid_worker_part_time, Role.grid_chief, Role.grid_instructor)


def covers(assignment: RoleAssignment, case: Case) -> bool:
    """Does this role assignment's scope include the case?"""
    role = assignment.role
    if role in GRID_ROLES:
        return assignment.node is not None and assignment.node.contains(case.grid)
    if role == Role.centre_staff:
        # The centre now in charge, or a centre above it.
        return assignment.node is not None and assignment.node.contains(case.centre_node)
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


def allowed_actions(person_id: int, assignments: list[RoleAssignment], case: Case) -> list[str]:
    """The lifecycle's actions from the case's state that this person may take, in declared order."""
    return [t for t in triggers_from(case.state) if acting_role(person_id, assignments, case, t) is not None]


def sees_phone(assignments: list[RoleAssignment], case: Case) -> bool:
    """Only the grid's workers and the handling department need the reporter's phone."""
    for assignment in assignments:
        if assignment.role in (Role.grid_worker, Role.grid_worker_part_time) and covers(assignment, case):
            return True
        if assignment.role == Role.department_handler and covers(assignment, case):
            return True
    return False


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
