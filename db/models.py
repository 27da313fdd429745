"""Typed declarative models (SQLAlchemy 2.0). Portable SQL only: SQLite by default, PostgreSQL for scale-out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones; store naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class StudyVersion(Base):
    """A registered protocol version: its text and bundle manifest as they ran, so exports need no files.

    The *study* is the protocol's ``study.id`` (``protocol_id`` here); each edit registers a new version of it.
    Rows elsewhere point at a version (``version_id``; the database column keeps its first name, ``study_id``).
    """

    __tablename__ = "studies"
    __table_args__ = (UniqueConstraint("protocol_id", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    protocol_text: Mapped[str] = mapped_column(Text)
    protocol_path: Mapped[str] = mapped_column(Text)
    bundle_root: Mapped[str] = mapped_column(Text)
    bundle_hash: Mapped[str] = mapped_column(String(64))
    bundle_manifest: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(default=True)
    # SHA-256 of the preregistration document this version is analysed against (``init --prereg``, else
    # the one inherited from the study's earlier versions, else this protocol's own): see study/prereg.py.
    prereg_hash: Mapped[str | None] = mapped_column(String(64))

    participants: Mapped[list[Participant]] = relationship(back_populates="version")


class AllocationSlot(Base):
    """One row of the pre-generated allocation table; claimed by exactly one participant."""

    __tablename__ = "allocation_slots"
    __table_args__ = (
        UniqueConstraint("study_id", "stratum", "position"),
        Index("ix_allocation_free", "study_id", "stratum", "participant_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column("study_id", ForeignKey("studies.id"))
    stratum: Mapped[str] = mapped_column(String(128))
    position: Mapped[int]
    block: Mapped[int]
    block_size: Mapped[int]
    arm: Mapped[str] = mapped_column(String(64))
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"), unique=True)
    claimed_at: Mapped[datetime | None]


class Participant(Base):
    __tablename__ = "participants"
    # A unique index, not a constraint: SQLite adds it without rebuilding the table.
    __table_args__ = (Index("uq_participants_label", "study_id", "label_hash", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column("study_id", ForeignKey("studies.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label_hash: Mapped[str | None] = mapped_column(String(64))
    url_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stratum: Mapped[str | None] = mapped_column(String(128))
    arm: Mapped[str | None] = mapped_column(String(64))
    sequence: Mapped[str | None] = mapped_column(String(256))
    order_seed: Mapped[int | None]
    language: Mapped[str | None] = mapped_column(String(16))  # None: enrolled before languages (the first)
    step_index: Mapped[int] = mapped_column(default=0)
    step_shown_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    allocated_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]
    identifiers_purged_at: Mapped[datetime | None]

    version: Mapped[StudyVersion] = relationship(back_populates="participants")
    consent: Mapped[ConsentRecord | None] = relationship(back_populates="participant")
    responses: Mapped[list[Response]] = relationship(back_populates="participant")

    @property
    def public_id(self) -> str:
        """Pseudonymous id used in exports (never the URL token)."""
        return f"P{self.id:05d}"


class ConsentRecord(Base):
    """What the participant was shown and ticked, and when (e-consent record)."""

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), unique=True)
    consent_text: Mapped[str] = mapped_column(Text)
    statements: Mapped[dict[str, Any]] = mapped_column()
    ticked: Mapped[list[Any]] = mapped_column()
    consented_at: Mapped[datetime] = mapped_column(default=utcnow)

    participant: Mapped[Participant] = relationship(back_populates="consent")


class Response(Base):
    """One answer. The unique key makes double submits and two open tabs store each answer once."""

    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("participant_id", "step_key", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    step_key: Mapped[str] = mapped_column(String(32))
    item_id: Mapped[str] = mapped_column(String(96))
    value: Mapped[str] = mapped_column(Text)
    value_num: Mapped[float | None]
    shown_at: Mapped[datetime]
    submitted_at: Mapped[datetime]
    rt_ms: Mapped[int]

    participant: Mapped[Participant] = relationship(back_populates="responses")


class Event(Base):
    """Append-only audit log of every write (triggers refuse UPDATE and DELETE, see the migration)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_participant", "participant_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    version_id: Mapped[int | None] = mapped_column("study_id", ForeignKey("studies.id"))
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"))
    kind: Mapped[str] = mapped_column(String(32))
    step_key: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


def rater_public_id(rater_id: int) -> str:
    """The rater's pseudonymous id in exports, listings and the dashboard (never the name or e-mail).

    A function of the row id, so a query that selects only ``Rater.id`` (the dashboard's aggregate) names
    raters exactly as :attr:`Rater.public_id` does."""
    return f"R{rater_id:03d}"


def rater_status(active: bool, signed_up: bool) -> str:
    """``inactive`` (replaced or removed), ``invited`` (the one-time link not used yet: no password) or
    ``active``; a function of the two columns so the dashboard's aggregate query and ``raters list`` agree."""
    if not active:
        return "inactive"
    return "active" if signed_up else "invited"


class Rater(Base):
    """A dermatologist on the rating panel. Credentials are stored only as Argon2 hashes."""

    __tablename__ = "raters"
    __table_args__ = (UniqueConstraint("protocol_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(256))
    slot: Mapped[int]
    order_seed: Mapped[int]
    invite_hash: Mapped[str | None] = mapped_column(String(256))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("raters.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]

    @property
    def public_id(self) -> str:
        """Pseudonymous id used in exports (never the name or e-mail): :func:`rater_public_id`."""
        return rater_public_id(self.id)

    @property
    def status(self) -> str:
        """Where the rater stands on the panel: :func:`rater_status`."""
        return rater_status(self.active, self.password_hash is not None)


class RatingAssignment(Base):
    """An image a rater must rate, at its place in the rater's own (seeded, stored) order."""

    __tablename__ = "rating_assignments"
    __table_args__ = (UniqueConstraint("rater_id", "image_id"), UniqueConstraint("rater_id", "position"))

    id: Mapped[int] = mapped_column(primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"))
    image_id: Mapped[str] = mapped_column(String(96))
    position: Mapped[int]
    shown_at: Mapped[datetime | None]
    rated_at: Mapped[datetime | None]


class Rating(Base):
    """One answer of a rater about an image; unique per (rater, image, item) like participants' responses."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("rater_id", "image_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"))
    image_id: Mapped[str] = mapped_column(String(96))
    item_id: Mapped[str] = mapped_column(String(96))
    value: Mapped[str] = mapped_column(Text)
    value_num: Mapped[float | None]
    shown_at: Mapped[datetime]
    rated_at: Mapped[datetime]


class AuthSession(Base):
    """A signed-in rater or researcher; the token lives in the URL, only its SHA-256 here."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    rater_id: Mapped[int | None] = mapped_column(ForeignKey("raters.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class LoginThrottle(Base):
    """Failed sign-ins per account: after a few, further attempts wait (exponential back-off)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]


class Job(Base):
    """A request for model work (diagnosis, chat, generation) waiting for, held by, or done by a worker.

    A worker holds a job only until ``lease_until``; a job whose lease ran out is free again (its worker died or
    hung), so it is retried elsewhere, at most ``max_attempts`` times. See db/jobs.py and docs/workers.md.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claimable", "kind", "status", "id"),
        Index("ix_jobs_request", "request_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    request_key: Mapped[str] = mapped_column(String(64))
    batch_key: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column()
    # Photos and other personal inputs: held only while the job is open, cleared when it ends (docs/workers.md).
    inputs: Mapped[dict[str, Any] | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="queued")
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error_code: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    worker: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    # An open job past this time fails as expired (the server's job TTL), so nothing waits forever.
    expires_at: Mapped[datetime | None]
    # Jobs a page holds (the explorer's): the page renews this while it is open; once it lapses (the user has
    # left) the sweeper erases the job's photo and results. None: nobody holds it (a study trial's job).
    held_until: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class WorkerBeat(Base):
    """A running ``skingen worker`` and the job kinds it serves: it renews ``last_seen`` every few seconds, so
    a page can tell "no worker is running" (no fresh row) from "the workers are busy" (db/jobs.py)."""

    __tablename__ = "worker_beats"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    kinds: Mapped[list[Any]] = mapped_column()
    started_at: Mapped[datetime]
    last_seen: Mapped[datetime]


class InteractionTurn(Base):
    """One exchange of a participant with the live model on a case (interactive conditions).

    A turn is stored when asked (with the job that answers it, so a reload finds it again) and completed when
    the worker's answer arrives. ``turn`` counts from 1 per participant and step; the unique key makes two tabs
    store one turn per number. The photo is the case's own (a bundle file): nothing a participant uploaded is
    held here.
    """

    __tablename__ = "interaction_turns"
    __table_args__ = (UniqueConstraint("participant_id", "step_key", "turn"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    step_key: Mapped[str] = mapped_column(String(32))
    turn: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    question: Mapped[str] = mapped_column(Text, default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    condition: Mapped[str | None] = mapped_column(String(64))
    model_id: Mapped[str | None] = mapped_column(String(256))
    latency_ms: Mapped[int | None]
    images: Mapped[list[Any]] = mapped_column(default=list)
    asked_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
