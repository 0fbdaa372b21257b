"""SQLAlchemy models. The schema itself is created only by Alembic migrations."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware times")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class NodeLevel(str, enum.Enum):
    """Levels of the one grid tree (Art. 3, 11)."""

    city = "city"  # 市
    district = "district"  # 县/区
    township = "township"  # 乡镇/街道
    community = "community"  # 社区/村
    grid = "grid"  # 网格
    household_unit = "household_unit"  # 联户单位


class GridKind(str, enum.Enum):
    comprehensive = "comprehensive"  # 综合网格
    dedicated = "dedicated"  # 专属网格


class Role(str, enum.Enum):
    resident = "resident"  # 群众
    grid_worker = "grid_worker"  # 专职网格员
    grid_worker_part_time = "grid_worker_part_time"  # 兼职网格员
    grid_chief = "grid_chief"  # 网格长
    grid_instructor = "grid_instructor"  # 网格指导员
    centre_staff = "centre_staff"  # 网格化工作机构 (scoped to a township, district or city node)
    department_handler = "department_handler"  # 有关部门
    administrator = "administrator"  # 主管部门
    system = "system"  # the supervision sweep (time limits); never granted to a person


class CaseSource(str, enum.Enum):
    resident_report = "resident_report"  # 群众上报
    worker_patrol = "worker_patrol"  # 网格员巡查发现


def _enum(cls) -> Enum:
    return Enum(cls, native_enum=False, length=32, validate_strings=True)


class Node(Base):
    """One node of the grid hierarchy: city down to household unit."""

    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # region / grid code
    level: Mapped[NodeLevel] = mapped_column(_enum(NodeLevel))
    kind: Mapped[GridKind | None] = mapped_column(_enum(GridKind))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True)
    # Materialised path of codes, "/LS/LS-CG/LS-CG-01/": scope checks are prefix checks.
    path: Mapped[str] = mapped_column(String(400), index=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_bo: Mapped[str] = mapped_column(String(400))
    area_zh: Mapped[str | None] = mapped_column(Text)  # 网格范围, published per Art. 20
    area_bo: Mapped[str | None] = mapped_column(Text)
    boundary: Mapped[dict[str, Any] | None]  # GeoJSON Polygon or MultiPolygon
    supervision_phone: Mapped[str | None] = mapped_column(String(40))  # 监督电话 (Art. 20)

    parent: Mapped[Node | None] = relationship(remote_side=[id])

    def name(self, language: str) -> str:
        return self.name_bo if language == "bo" else self.name_zh

    def contains(self, other: Node) -> bool:
        """True when `other` is this node or lies below it."""
        return other.path.startswith(self.path)


class Department(Base):
    """有关部门: a department that handles cases."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_bo: Mapped[str] = mapped_column(String(400))

    def name(self, language: str) -> str:
        return self.name_bo if language == "bo" else self.name_zh


class Matter(Base):
    """One entry of the published matter list (事项清单, Art. 22)."""

    __tablename__ = "matters"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_bo: Mapped[str] = mapped_column(String(400))
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_bo: Mapped[str] = mapped_column(Text, default="")
    work_kind: Mapped[str] = mapped_column(String(40))  # Art. 21 kind of work
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    # 限时办结: in clock hours or in working days (工作日), one of the two.
    time_limit_hours: Mapped[int | None] = mapped_column(Integer)
    time_limit_working_days: Mapped[int | None] = mapped_column(Integer)
    # 受理时限: in clock hours (urgent matters) or working hours; 2 working hours when neither is given.
    accept_within_hours: Mapped[int | None] = mapped_column(Integer)
    accept_within_working_hours: Mapped[int | None] = mapped_column(Integer)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # notices ignore quiet hours
    needs_onsite_verification: Mapped[bool] = mapped_column(Boolean, default=False)
    keywords_zh: Mapped[list[str]] = mapped_column(default=list)
    keywords_bo: Mapped[list[str]] = mapped_column(default=list)
    published_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]

    department: Mapped[Department] = relationship(lazy="joined")

    @property
    def is_published(self) -> bool:
        return self.withdrawn_at is None

    def name(self, language: str) -> str:
        return self.name_bo if language == "bo" else self.name_zh


class MatterChange(Base):
    """History of the matter list: published, changed, withdrawn, republished."""

    __tablename__ = "matter_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id"), index=True)
    change: Mapped[str] = mapped_column(String(20))  # published | updated | withdrawn | republished
    snapshot: Mapped[dict[str, Any]]
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="zh")  # "zh" or "bo"
    phone: Mapped[str | None] = mapped_column(String(40))
    home_grid_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"))  # the grid they report from or chose
    language_chosen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    erased_at: Mapped[datetime | None]  # `gridbot person erase`: personal data removed on request

    # Not loaded with the person: read them with storage.people when needed.
    identities: Mapped[list[Identity]] = relationship(back_populates="person", lazy="raise")
    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="person",
        lazy="raise",
        primaryjoin="and_(Person.id == RoleAssignment.person_id, RoleAssignment.revoked_at.is_(None))",
        viewonly=True,
    )


class Identity(Base):
    """A person's account on one platform (Telegram user id, web-chat id)."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_identities_platform_external"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    platform: Mapped[str] = mapped_column(String(16))  # "telegram" | "web"
    external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str | None] = mapped_column(String(64))
    blocked_at: Mapped[datetime | None]  # the person blocked the bot: skip sends
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship(back_populates="identities")


class RoleAssignment(Base):
    """A role held by a person, scoped to a node of the grid tree or to a department."""

    __tablename__ = "role_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role))
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    person: Mapped[Person] = relationship(back_populates="roles", viewonly=True)
    node: Mapped[Node | None] = relationship(lazy="selectin")
    department: Mapped[Department | None] = relationship(lazy="selectin")


class CaseNumberCounter(Base):
    """Per-day sequence behind case numbers such as LS-20261124-0042."""

    __tablename__ = "case_number_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


# Which states each stage's deadline matters in (kept equal to storage.lifecycle.STAGES by a test).
DEADLINE_INDEXES = {
    "accept_deadline": "state = 'reported'",
    "handling_deadline": "state IN ('transferred', 'in_progress')",
    "verification_deadline": "state = 'handled'",
}


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_reporter_created", "reporter_id", "created_at"),
        Index("ix_cases_state_centre", "state", "centre_node_id"),
        Index("ix_cases_department_state", "department_id", "state"),
        Index("ix_cases_grid_state", "grid_id", "state"),
        Index("ix_cases_state_created", "state", "created_at"),  # work queues, oldest first
        Index("ix_cases_supervising_state", "supervising_node_id", "state"),
        # The supervision sweep's passed deadlines: one partial index per stage (lifecycle.STAGES).
        *(Index(f"ix_cases_{field}_open", field, postgresql_where=text(where), sqlite_where=text(where))
          for field, where in DEADLINE_INDEXES.items()),
        Index("ix_cases_anonymised_closed", "anonymised_at", "closed_at"),  # the retention job
        Index("ix_cases_grid_updated", "grid_id", "updated_at"),  # indicators: cases touched in a period
        Index("ix_cases_grid_deadline", "grid_id", "handling_deadline"),  # indicators: cases due in a period
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    source: Mapped[CaseSource] = mapped_column(_enum(CaseSource))
    state: Mapped[str] = mapped_column(String(24))
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id"))
    description: Mapped[str] = mapped_column(Text)
    description_language: Mapped[str] = mapped_column(String(8))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(Text)
    grid_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    reporter_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    concerned_residents: Mapped[str | None] = mapped_column(Text)  # named by a worker on patrol
    centre_node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))  # grid centre now in charge
    joint_meeting: Mapped[bool] = mapped_column(Boolean, default=False)  # 联席会议
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    # One deadline per stage (storage.lifecycle.STAGES), set when the stage begins.
    accept_deadline: Mapped[datetime | None]  # 受理
    handling_deadline: Mapped[datetime | None]  # 办理 (限时办结)
    verification_deadline: Mapped[datetime | None]  # 核查, 24 hours (Art. 17)
    rating_deadline: Mapped[datetime | None]  # 评价, 7 days after closing
    extension_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 延期 granted
    pending_extension: Mapped[dict[str, Any] | None]  # {"deadline", "reason", "requested_by"} until answered
    # The next level's grid centre that supervises the case after it ran a working day overdue.
    supervising_node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"))
    result_text: Mapped[str | None] = mapped_column(Text)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    verification_outcome: Mapped[str | None] = mapped_column(String(16))  # passed | failed
    satisfaction: Mapped[str | None] = mapped_column(String(24))
    satisfaction_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    # The grid centre's public wording (Open311), set by the `publish` action; never the resident's own text.
    public_text: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None]
    # When the retention job (or an erasure) removed the personal data of the case.
    anonymised_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    # With the number, opens the case on any platform and makes the person a follower.
    access_code: Mapped[str | None] = mapped_column(String(8))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))  # 合并: the case that carries on

    __mapper_args__ = {"version_id_col": version}

    matter: Mapped[Matter] = relationship(lazy="joined")
    grid: Mapped[Node] = relationship(foreign_keys=[grid_id], lazy="joined")
    centre_node: Mapped[Node] = relationship(foreign_keys=[centre_node_id], lazy="joined")
    supervising_node: Mapped[Node | None] = relationship(foreign_keys=[supervising_node_id], lazy="joined")
    department: Mapped[Department | None] = relationship(lazy="joined")
    reporter: Mapped[Person] = relationship(foreign_keys=[reporter_id], lazy="raise")
    attachments: Mapped[list[Attachment]] = relationship(lazy="selectin", order_by="Attachment.id")
    followers: Mapped[list[CaseFollower]] = relationship(lazy="selectin", order_by="CaseFollower.id")


class CaseMilestone(Base):
    """A moment a stage's time limit owes a case: remind, urge (催办), escalate when overdue.

    Armed by the store when a stage begins, fired once by the supervision sweep (or dropped when
    the case has moved on). Unique per case, stage, trigger and deadline: exactly once per stage.
    """

    __tablename__ = "case_milestones"
    __table_args__ = (
        UniqueConstraint("case_id", "stage", "trigger", "deadline", name="uq_case_milestones_once"),
        Index("ix_case_milestones_due", "due_at", postgresql_where=text("fired_at IS NULL"),
              sqlite_where=text("fired_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(32))
    deadline: Mapped[datetime]  # the stage's deadline this milestone belongs to
    due_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]
    event_id: Mapped[int | None] = mapped_column(ForeignKey("case_events.id"))

    event: Mapped[CaseEvent | None] = relationship(lazy="raise")


class Attachment(Base):
    """A photo or voice note attached to a case (by the reporter, a handler, or a verifier)."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("case_events.id"))
    platform: Mapped[str | None] = mapped_column(String(16))
    platform_file_id: Mapped[str | None] = mapped_column(String(200))
    stored_path: Mapped[str | None] = mapped_column(String(400))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16), default="photo", server_default="photo")  # photo | voice
    duration_seconds: Mapped[int | None] = mapped_column(Integer)  # voice notes
    # A copy without EXIF location, for readers who are not staff (the original is kept for staff).
    public_path: Mapped[str | None] = mapped_column(String(400))


class CaseFollower(Base):
    """Someone told about a case besides its reporter: a supporter of a duplicate, a merged case's
    reporter, or a person who opened it with number and access code."""

    __tablename__ = "case_followers"
    __table_args__ = (UniqueConstraint("case_id", "person_id", name="uq_case_followers_case_person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    reason: Mapped[str] = mapped_column(String(16))  # access_code | supporter | merged
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessCodeAttempt(Base):
    """A failed try of a case number with an access code: tries are limited per person and per number."""

    __tablename__ = "access_code_attempts"
    __table_args__ = (
        Index("ix_access_code_attempts_person_at", "person_id", "at"),
        Index("ix_access_code_attempts_number_at", "number", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    number: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AppSecret(Base):
    """Secrets made once and shared by every instance (e.g. the key that signs media links)."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseEvent(Base):
    """One immutable line of a case's history: who, in which role, did what, when."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@event.listens_for(CaseEvent, "before_update")
@event.listens_for(CaseEvent, "before_delete")
def _case_events_are_immutable(_mapper, _connection, target):
    raise PermissionError(f"case event {target.id} is immutable")


class Notification(Base):
    """Outbox: a message a case transition owes to a person, sent by the dispatcher."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "recipient_id", name="uq_notifications_event_recipient"),
        Index("ix_notifications_pending", "sent_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("case_events.id"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    message_key: Mapped[str] = mapped_column(String(64))  # language-neutral, e.g. "case.accepted"
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    gave_up_at: Mapped[datetime | None]
    # A dispatcher leases due rows for a short while; a dead dispatcher's lease simply runs out.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]

    event: Mapped[CaseEvent] = relationship(lazy="raise")  # set when enqueued, so one flush writes both


class ProcessedUpdate(Base):
    """Platform updates received and handled: a redelivered update is acknowledged and not handled twice.

    Keyed by the bot and the chat as well as the update id, so that a reused id (another bot, a
    forged update, Telegram restarting its sequence) never meets another person's record. A webhook
    update is stored when it arrives (`payload`, `processed_at` NULL) and handled in update order per
    chat, by whichever instance holds the chat's lock; rows are pruned after a retention period.
    """

    __tablename__ = "processed_updates"
    __table_args__ = (Index("ix_processed_updates_received_at", "received_at"),)

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    bot: Mapped[str] = mapped_column(String(32), primary_key=True, default="")  # e.g. the Telegram bot id
    chat: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    update_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(default=utcnow)  # NULL: stored, not handled yet
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the raw update until it is handled
    # The answer given, so that a redelivered update whose answer never arrived gets it again.
    replies: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    answered_at: Mapped[datetime | None]  # the answer was confirmed sent


class PacingSlot(Base):
    """The next free moment (Unix seconds) for sending under one key (a bot, a chat), shared by every
    instance: each send reserves its slot here, so several dispatchers keep one pace together."""

    __tablename__ = "pacing_slots"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    next_at: Mapped[float] = mapped_column(Float)


class DialogState(Base):
    """An open dialog: its state and answers so far, read on every message."""

    __tablename__ = "dialog_states"

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    dialog: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A report put aside (idle too long, or another dialog started): kept for 24 hours.
    draft: Mapped[dict[str, Any] | None]
    draft_saved_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class WebInboxMessage(Base):
    """A message for a web-chat user, kept until their page shows it (notifications included)."""

    __tablename__ = "web_inbox"
    __table_args__ = (Index("ix_web_inbox_person_id", "person_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    payload: Mapped[dict[str, Any]]  # a Reply: text, buttons
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime | None]


class Invitation(Base):
    """A one-time code an administrator gives to a member of staff (no one self-declares a role)."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the code
    role: Mapped[Role] = mapped_column(_enum(Role))
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))


class ApiToken(Base):
    """A token for the case API; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    scopes: Mapped[list[str] | None] = mapped_column(default=lambda: ["read"])  # read | act | report (set on every token)
    expires_at: Mapped[datetime | None]


class CaseView(Base):
    """Every time a member of staff opened a case card (Art. 19: who saw personal data, and when)."""

    __tablename__ = "case_views"
    __table_args__ = (Index("ix_case_views_viewed_at", "viewed_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))  # telegram | web | api | api_list
    viewed_at: Mapped[datetime] = mapped_column(default=utcnow)


class WeChatAccount(Base):
    """A WeChat Official Account's shared state: the access token every instance uses, and a pause
    after WeChat's API quota (45009) ran out."""

    __tablename__ = "wechat_accounts"

    app_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    refreshed_at: Mapped[datetime | None]
    paused_until: Mapped[datetime | None]
    language_tag_id: Mapped[int | None] = mapped_column(Integer)  # the user tag that shows the Tibetan menu


class WeChatFollower(Base):
    """What the WeChat adapter remembers of one follower: when they last wrote (the 48-hour window of
    customer-service messages) and the numbered options last shown to them."""

    __tablename__ = "wechat_followers"

    app_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_message_at: Mapped[datetime | None]
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    menu_serial: Mapped[int] = mapped_column(Integer, default=0)
    menus: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[serial, [button data, …]], …], newest last
    menu_language: Mapped[str | None] = mapped_column(String(8))  # the language tag set on WeChat
class PeriodicRun(Base):
    """When a periodic job last started: one instance claims each run (retention, once a day)."""

    __tablename__ = "periodic_runs"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
class BulletinDelivery(Base):
    """The monthly bulletin owed to one member of staff: one row per (month, person), sent once."""

    __tablename__ = "bulletin_deliveries"
    __table_args__ = (UniqueConstraint("month", "person_id", name="uq_bulletin_deliveries_month_person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))  # 2026-11
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class ConsoleLogin(Base):
    """A one-time sign-in link to the console (only its hash), and the session it opened."""

    __tablename__ = "console_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    link_hash: Mapped[str] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    session_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    session_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
