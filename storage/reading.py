"""Who may read each field of a case (Art. 19: need-to-know), declared once as data.

`RULE` says, for each field and each kind of reader, how much they read: the whole value,
a masked one (phone 139****5678, a location rounded to about 100 m, a text with phones,
ID numbers and e-mail addresses masked), or nothing. The chat's case cards, the case API,
Open311 and the notice board all read a case through `reading_for` / `public_reading`.

Who the reader is comes from storage.access (the same scope rules as acting): the reporter,
each staff role whose scope covers the case, and "public" for unauthenticated outputs.
A person out of scope reads nothing at all (the case answers like a missing one).

Each kind of step in a case's timeline has a note kind (`NOTE_KINDS`): notes written for
the public, text the resident typed, internal notes (staff only), or none; and some steps are
internal altogether (`STAFF_ONLY_STEPS`): a resident sees the public wording of the others.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from .access import covers
from .matters import about_particular_people
from .models import Case, CaseEvent, CaseSource, Role, RoleAssignment


class Level(enum.IntEnum):
    hidden = 0
    masked = 1
    full = 2


class Reader(str, enum.Enum):
    reporter = "reporter"
    grid_worker = "grid_worker"  # 专职网格员
    grid_worker_part_time = "grid_worker_part_time"  # 兼职网格员
    grid_chief = "grid_chief"  # 网格长
    grid_instructor = "grid_instructor"  # 网格指导员
    centre_staff = "centre_staff"  # 网格化工作机构
    department_handler = "department_handler"  # 有关部门
    public = "public"  # Open311 reads, the notice board: anyone


READERS = list(Reader)
STAFF_READERS = [r for r in READERS if r not in (Reader.reporter, Reader.public)]

# Fields of a case. note_* are the notes of timeline steps, by their note kind (NOTE_KINDS).
FIELDS = [
    "description",  # what the resident typed (for the public: only the centre's published wording)
    "address",  # typed by the resident
    "location",  # exact coordinates (masked: rounded to about 100 m)
    "reporter_name",
    "phone",  # the reporter's contact phone
    "concerned_residents",  # people a grid worker named on patrol
    "photos",
    "result",  # the department's or grid worker's result, written for the resident
    "rejection_reason",
    "satisfaction_comment",  # typed by the resident with their rating
    "note_public",  # notes written for the public: rejection reasons, results, published wording
    "note_resident",  # what the resident typed along a step: reopening reason, rating comment, withdrawal reason
    "note_internal",  # staff only: comments, prompts, extension, return and failed-verification reasons
    "internal_steps",  # steps that concern staff only (comments, prompts, reminders, extension requests)
]

F, M, H = Level.full, Level.masked, Level.hidden
_COLUMNS = [Reader.reporter, Reader.grid_worker, Reader.grid_worker_part_time, Reader.grid_chief,
            Reader.grid_instructor, Reader.centre_staff, Reader.department_handler, Reader.public]
# Each cell: (level normally, level for a matter about particular people).
# fmt: off
_TABLE: dict[str, list[tuple[Level, Level]]] = {
    #                        reporter  worker   part-time  chief    instructor centre   department  public
    "description":          [(F, F), (F, F), (F, H), (F, F), (F, F), (F, F), (F, F), (M, H)],
    "address":              [(F, F), (F, F), (F, H), (F, F), (F, F), (F, F), (F, F), (H, H)],
    "location":             [(F, F), (F, F), (F, H), (F, F), (F, F), (F, F), (F, F), (M, H)],
    "reporter_name":        [(F, F), (F, F), (H, H), (F, F), (H, H), (H, H), (F, F), (H, H)],
    "phone":                [(F, F), (F, F), (M, M), (F, F), (M, M), (M, M), (F, F), (H, H)],
    "concerned_residents":  [(F, F), (F, F), (H, H), (F, F), (H, H), (H, H), (F, F), (H, H)],
    "photos":               [(F, F), (F, F), (F, H), (F, F), (F, F), (F, F), (F, F), (H, H)],
    "result":               [(F, F), (F, F), (F, H), (F, F), (F, F), (F, F), (F, F), (M, H)],
    "rejection_reason":     [(F, F), (F, F), (F, H), (F, F), (F, F), (F, F), (F, F), (M, H)],
    "satisfaction_comment": [(F, F), (F, F), (F, H), (F, F), (F, F), (F, F), (F, F), (H, H)],
    "note_public":          [(F, F), (F, F), (F, H), (F, F), (F, F), (F, F), (F, F), (M, H)],
    "note_resident":        [(F, F), (F, F), (F, H), (F, F), (F, F), (F, F), (F, F), (H, H)],
    "note_internal":        [(H, H), (F, F), (F, H), (F, F), (F, F), (F, F), (F, F), (H, H)],
    "internal_steps":       [(H, H), (F, F), (F, F), (F, F), (F, F), (F, F), (F, F), (H, H)],
}
# fmt: on
RULE: dict[str, dict[Reader, tuple[Level, Level]]] = {
    name: dict(zip(_COLUMNS, cells, strict=True)) for name, cells in _TABLE.items()
}
assert list(RULE) == FIELDS

# Fields about the reporter as a person: an anonymous report shows them to nobody but the reporter.
ABOUT_THE_REPORTER = ("reporter_name", "phone")
# Anonymous reports and patrol findings (often about named residents): the public reads no place
# beyond the grid and no notes; only a wording the grid centre published.
PUBLIC_WITHHELD_FOR_PATROL_AND_ANONYMOUS = ("location", "result", "rejection_reason", "note_public")

PUBLIC, RESIDENT, INTERNAL, NONE = "public", "resident", "internal", "none"
# The kind of note each step carries. Every lifecycle trigger must be listed (a test checks);
# an unlisted action is read as internal and staff-only.
NOTE_KINDS: dict[str, str] = {
    "report": RESIDENT,  # the description itself is the field above; the event has no note
    "accept": INTERNAL,
    "reject": PUBLIC,
    "escalate": INTERNAL,
    "refer_to_joint_meeting": INTERNAL,
    "transfer": INTERNAL,
    "start_handling": INTERNAL,
    "extend_deadline": INTERNAL,
    "submit_result": PUBLIC,
    "verify_pass": PUBLIC,
    "verify_fail": INTERNAL,
    "resolve_on_spot": PUBLIC,
    "rate": RESIDENT,
    "reopen": RESIDENT,
    "relay_feedback": INTERNAL,
    "comment": INTERNAL,
    "prompt": INTERNAL,
    "publish": PUBLIC,
    # Time limits (issue 9): milestones of the sweep, extensions, returns, withdrawal.
    "remind": NONE,
    "urge": NONE,
    "escalate_overdue": NONE,
    "verification_overdue": NONE,
    "request_extension": INTERNAL,
    "approve_extension": INTERNAL,
    "refuse_extension": INTERNAL,
    "return_to_centre": INTERNAL,
    "withdraw": RESIDENT,
    # The case as a conversation (issue 13): what the resident adds is theirs; a message to the
    # resident is read by the resident (and staff), never by the public; a merge is public wording.
    "add_to_case": RESIDENT,
    "resubmit": RESIDENT,
    "reply_to_resident": RESIDENT,
    "merge": PUBLIC,
    "merged_in": PUBLIC,
}
# Steps a resident does not see at all (they see the public wording of every other step; an urge
# 催办 they were told about is in their timeline too).
STAFF_ONLY_STEPS = frozenset({
    "comment", "prompt", "remind", "verification_overdue", "request_extension", "refuse_extension",
})
# Event data a reader of the step may see whether or not they may read its note: codes and times.
PLAIN_DATA_KEYS = frozenset({"department", "deadline", "previous_deadline", "centre", "verify_by", "rating", "stage"})
# Steps of kind "none" carry no note; should one ever carry one, it is read as internal.
NOTE_FIELD = {PUBLIC: "note_public", RESIDENT: "note_resident", INTERNAL: "note_internal", NONE: "note_internal"}

COORDINATE_DECIMALS = 3  # about 100 m


def sensitive(case: Case) -> bool:
    """Is the case's matter about particular people (or public security)? See storage.matters."""
    return about_particular_people(case.matter)


def level(field: str, readers: set[Reader] | frozenset[Reader], case: Case) -> Level:
    """How much of `field` these readers read of this case: the most any of them may."""
    if field not in RULE:
        raise KeyError(f"no reading rule for field {field!r}")
    about_people = sensitive(case)
    best = Level.hidden
    for reader in readers:
        cell = RULE[field][reader]
        found = cell[1] if about_people else cell[0]
        if case.anonymous and field in ABOUT_THE_REPORTER and reader != Reader.reporter:
            found = Level.hidden
        if reader == Reader.public and field in PUBLIC_WITHHELD_FOR_PATROL_AND_ANONYMOUS and (
                case.anonymous or case.source != CaseSource.resident_report):
            found = Level.hidden
        best = max(best, found)
    return best


def readers_of(person_id: int, assignments: list[RoleAssignment], case: Case) -> frozenset[Reader]:
    """The ways this person reads the case (empty: out of scope, the case is 'not found' for them)."""
    found: set[Reader] = set()
    if case.reporter_id == person_id:
        found.add(Reader.reporter)
    elif any(f.person_id == person_id for f in case.followers):
        found.add(Reader.public)  # a follower (access code, supporter, merged repeat) reads what anyone may
    for assignment in assignments:
        in_area = (assignment.role == Role.centre_staff and assignment.node is not None
                   and assignment.node.contains(case.grid))
        if assignment.role.value in Reader.__members__ and (covers(assignment, case) or in_area):
            found.add(Reader(assignment.role.value))
    return frozenset(found)


# ---------------------------------------------------------------- masking

_DIGIT_MAP = {ord(c): str(i) for block in ("༠༡༢༣༤༥༦༧༨༩", "０１２３４５６７８９") for i, c in enumerate(block)}
_CASE_NUMBER = r"LS-\d{8}-\d{4,}"
_PERSONAL = re.compile(
    rf"(?P<case>{_CASE_NUMBER})"
    r"|(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<id>(?<!\d)\d{6}(?:19|20)\d{2}\d{7}[\dXx](?!\d))"
    r"|(?P<phone>(?<!\d)(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d){8}(?!\d)"
    r"|(?<!\d)0\d{2,3}[ -]?\d{7,8}(?!\d)"
    r"|(?<!\d)\d{9,}(?!\d))",
    re.IGNORECASE,
)


def mask_phone(phone: str | None) -> str | None:
    """139****5678: enough to recognise one's own number, not to call it."""
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_personal_data(text: str | None) -> str | None:
    """Phones, 18-digit ID numbers and e-mail addresses masked (Tibetan and full-width digits too)."""
    if not text:
        return text
    ascii_text = text.translate(_DIGIT_MAP)  # same length: positions match the original
    out, last = [], 0
    for match in _PERSONAL.finditer(ascii_text):
        if match.lastgroup == "case":
            continue
        start, end = match.span()
        found = text[start:end]
        if match.lastgroup == "email":
            masked = "***@***"
        else:
            digits = [i for i, c in enumerate(found) if ascii_text[start + i].isdigit()]
            keep = set(digits[-2:])
            masked = "".join("*" if i in digits and i not in keep else c for i, c in enumerate(found))
        out += [text[last:start], masked]
        last = end
    out.append(text[last:])
    return "".join(out)


# ---------------------------------------------------------------- reading a case


@dataclass(frozen=True)
class EventReading:
    """One step as a reader sees it: `shown` False means the step is not theirs to see at all."""

    shown: bool
    note: str | None
    data: dict[str, Any]


class CaseReading:
    """A case through the rule, for one reader (the set of ways they read it)."""

    def __init__(self, case: Case, readers: frozenset[Reader]):
        self.case, self.readers = case, readers

    @property
    def in_scope(self) -> bool:
        return bool(self.readers)

    @property
    def is_public(self) -> bool:
        return self.readers == frozenset({Reader.public})

    def level(self, field: str) -> Level:
        return level(field, self.readers, self.case)

    def _text(self, field: str, value: str | None) -> str | None:
        found = self.level(field)
        if found == Level.full:
            return value
        if found == Level.masked:
            return mask_personal_data(value)
        return None

    def description(self) -> str | None:
        """The resident's words; for the public only the centre's published wording, masked."""
        found = self.level("description")
        if found == Level.full:
            return self.case.description
        if found == Level.masked:
            return mask_personal_data(self.case.public_text) if self.case.public_text else None
        return None

    def address(self) -> str | None:
        return self._text("address", self.case.address)

    def location(self) -> tuple[float | None, float | None]:
        found = self.level("location")
        lat, lon = self.case.latitude, self.case.longitude
        if found == Level.full:
            return lat, lon
        if found == Level.masked and lat is not None and lon is not None:
            return round(lat, COORDINATE_DECIMALS), round(lon, COORDINATE_DECIMALS)
        return None, None

    def phone(self) -> tuple[str | None, bool]:
        """(the phone as this reader sees it, whether it is masked)."""
        found = self.level("phone")
        phone = self.case.contact_phone
        if found == Level.full or not phone:
            return (phone if found == Level.full else None), False
        if found == Level.masked:
            return mask_phone(phone), True
        return None, False

    def reporter_name(self, name: str | None) -> str | None:
        return self._text("reporter_name", name)

    def concerned_residents(self) -> str | None:
        return self._text("concerned_residents", self.case.concerned_residents)

    def photos(self) -> list:
        return list(self.case.attachments) if self.level("photos") >= Level.masked else []

    def result(self) -> str | None:
        return self._text("result", self.case.result_text)

    def rejection_reason(self) -> str | None:
        return self._text("rejection_reason", self.case.rejection_reason)

    def satisfaction_comment(self) -> str | None:
        return self._text("satisfaction_comment", self.case.satisfaction_comment)

    def note_level(self, action: str) -> Level:
        """How much of the note of an `action` step this reader reads (0 when the step is not theirs to see)."""
        kind = NOTE_KINDS.get(action, INTERNAL)
        staff_only = action in STAFF_ONLY_STEPS or action not in NOTE_KINDS
        if staff_only and self.level("internal_steps") == Level.hidden:
            return Level.hidden
        return self.level(NOTE_FIELD[kind])

    def event(self, event: CaseEvent) -> EventReading:
        kind = NOTE_KINDS.get(event.action, INTERNAL)
        staff_only = event.action in STAFF_ONLY_STEPS or event.action not in NOTE_KINDS
        if staff_only and self.level("internal_steps") == Level.hidden:
            return EventReading(False, None, {})
        note_level = self.level(NOTE_FIELD[kind])
        data = event.data or {}
        if note_level == Level.full:
            return EventReading(True, event.note, dict(data))
        plain = {k: v for k, v in data.items() if k in PLAIN_DATA_KEYS}
        if note_level == Level.masked:
            texts = {k: mask_personal_data(v) if isinstance(v, str) else v for k, v in data.items() if k not in plain}
            return EventReading(True, mask_personal_data(event.note), {**plain, **texts})
        return EventReading(True, None, plain)


def reading_for(person_id: int, assignments: list[RoleAssignment], case: Case) -> CaseReading:
    return CaseReading(case, readers_of(person_id, assignments, case))


def public_reading(case: Case) -> CaseReading:
    return CaseReading(case, frozenset({Reader.public}))


def reading_as(case: Case, *readers: Reader) -> CaseReading:
    """The case as these kinds of reader see it (for tests and previews)."""
    return CaseReading(case, frozenset(readers))
