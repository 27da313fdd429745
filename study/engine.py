"""The study engine: consent, enrollment, the current step, and answer submission — all through the database.

Every call is one short transaction keyed by the participant's URL token; nothing lives in process memory,
so a reload, a second tab, another server process or a restart sees exactly the same position. The Streamlit
app and the simulation bots both call this class, so the bots exercise the code path participants use.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from db.models import (
    AllocationSlot,
    ConsentRecord,
    Event,
    Participant,
    Response,
    StudyVersion,
    utcnow,
)
from db.session import Database
from formats.contract import DECLINE_EVENT, IMAGE_ENLARGE_EVENT
from formats.status import ACTIVE, COMPLETED, status_at
from study.allocation import arm_by_id
from study.path import (
    AnswerError,
    ParticipantPath,
    PathCache,
    Step,
    validate_answers,
)
from study.protocol.loading import LoadedProtocol, load_protocol
from study.references import REFERENCE_KINDS, case_references
from study.refusals import (
    AnswerLocked,
    ConsentRefused,
    EngineError,
    ResumeRefused,
    StepConflict,
    UnknownToken,
    Withdrawn,
)
from study.registry import (
    RegistryError,
    active_version,
    check_schema,
    extend_allocation_table,
    stored_protocol,
)
from study.tokens import hash_token, new_token, secret_order_seed
from study.turn_log import TurnLog

LOG = logging.getLogger("skingen.engine")

MAX_URL_PARAM_LENGTH = 256


@dataclass(frozen=True)
class Position:
    """Where a participant stands: the step to show, and enough context to render progress."""

    participant_id: int
    public_id: str
    step: Step
    index: int
    total: int | None
    status: str
    arm: str | None
    language: str
    """The language the participant takes the study in (the step's texts are in it)."""

    @property
    def completed(self) -> bool:
        return self.step.kind == "complete"


# The statements of every page submit, built once: SQLAlchemy memoizes a statement object's cache key, so
# each execution skips building the statement and computing its key (the values come as parameters).
_BY_TOKEN = select(Participant).where(Participant.token_hash == bindparam("token_hash"))
_BY_TOKEN_LOCKED = _BY_TOKEN.with_for_update()
_UPDATE_PARTICIPANT = update(Participant.__table__).where(
    Participant.__table__.c.id == bindparam("participant_id")
)
_INSERT_EVENT = insert(Event.__table__)
_INSERT_RESPONSES = insert(Response.__table__)


def _update(session: Session, participant: Participant, values: Mapping[str, object]) -> None:
    """One UPDATE of the participant's row, outside the ORM's unit of work (every page submit ends here);
    the loaded object takes the new values as its committed state, so nothing is written twice."""
    session.execute(_UPDATE_PARTICIPANT, {"participant_id": participant.id, **values})
    for key, value in values.items():
        set_committed_value(participant, key, value)


class StudyEngine:
    def __init__(
        self, db: Database, version_id: int, loaded: LoadedProtocol, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.version_id = version_id
        self.loaded = loaded
        self.protocol = loaded.protocol
        self.clock = clock
        # where a new participant's case-order seed comes from: secret for people (their order can't be
        # guessed from anyone else's), a bot's own seeded stream under simulation (study.simulate)
        self.order_seeds: Callable[[], int] = secret_order_seed
        self._conditions = {c.id for c in loaded.bundle.manifest.skin_conditions}
        # one cache per language: the steps (same keys, items and codes) carry the texts of that language
        self._paths = {
            language: PathCache(loaded.localized(language)) for language in self.protocol.languages
        }
        self.turn_log = TurnLog(self)

    @classmethod
    def open(
        cls, db: Database, protocol_path: str | None = None, clock: Callable[[], datetime] = utcnow
    ) -> StudyEngine:
        """The engine for the registered study: the one in ``protocol_path``, or the only active one."""
        if protocol_path is None:
            study = active_version(db)
            return cls(db, study.id, stored_protocol(study), clock)
        loaded = load_protocol(protocol_path)
        check_schema(db)
        with db.read() as session:
            study = session.scalar(
                select(StudyVersion).where(
                    StudyVersion.protocol_id == loaded.protocol.study.id,
                    StudyVersion.content_hash == loaded.content_hash,
                )
            )
        if study is None:
            raise RegistryError(
                f"{protocol_path} is not registered in {db.url} (or was edited since): "
                f"run `skingen-study init --db {db.url} --protocol {protocol_path}`"
            )
        return cls(db, study.id, loaded, clock)

    # --- reading ------------------------------------------------------------------------------------------
    def path(self, arm: str | None, order_seed: int | None, language: str | None = None) -> ParticipantPath:
        """The steps of a participant with this allocation (computed once per allocation and language)."""
        return self._paths[language or self.protocol.languages[0]](arm, order_seed)

    def participant_path(self, participant: Participant) -> ParticipantPath:
        return self.path(participant.arm, participant.order_seed, self.language_of(participant))

    def language_of(self, participant: Participant) -> str:
        """The participant's language: as stored at consent (before languages existed: the first)."""
        return participant.language or self.protocol.languages[0]

    def localized(self, language: str) -> LoadedProtocol:
        """The protocol with its texts in ``language`` (one of its languages), for what participants read."""
        return self.loaded.localized(language)

    def path_of(self, token: str) -> ParticipantPath:
        """The steps of the participant with this token (as allocated so far)."""
        with self.db.read() as session:
            return self.participant_path(self.participant_row(session, token))

    def position(self, token: str) -> Position:
        with self.db.read() as session:
            return self._position(self.participant_row(session, token))

    def _position(self, participant: Participant) -> Position:
        path = self.participant_path(participant)
        index = path.index(participant.step_index)
        status = status_at(
            participant.status,
            participant.last_activity_at,
            self.protocol.dropout_after_minutes,
            self.clock(),
        )
        return Position(
            participant.id,
            participant.public_id,
            path.steps[index],
            index,
            path.total,
            status,
            participant.arm,
            self.language_of(participant),
        )

    def participant_row(self, session: Session, token: str, *, lock: bool = False) -> Participant:
        query = _BY_TOKEN_LOCKED if lock else _BY_TOKEN
        participant = session.scalar(query, {"token_hash": hash_token(token)})
        if participant is None:
            LOG.warning("refused a request with an unknown participant token")
            raise UnknownToken("this study link is not valid; please use the link you were given")
        if participant.version_id != self.version_id:
            LOG.warning(
                "refused participant %s's token: it belongs to study %s",
                participant.id,
                participant.version_id,
            )
            raise UnknownToken("this link belongs to another version of the study")
        if participant.withdrawn_at is not None:
            raise Withdrawn("you have withdrawn from this study; nothing of your answers is kept")
        return participant

    # --- writing ------------------------------------------------------------------------------------------
    def consent(
        self,
        ticked: Collection[str],
        url_params: Mapping[str, str] | None = None,
        language: str | None = None,
    ) -> str:
        """Record consent and create the participant; returns their new URL token.

        ``language`` (one of the protocol's ``languages``; default: the first) is the participant's for the
        rest of the study, and the consent record keeps the text and statements as shown in it. A participant
        whose declared label (``participant_label``) is already enrolled is not enrolled twice: they get a
        fresh link to their own study instead (see :meth:`resume`), in the language they enrolled in.
        """
        language = language or self.protocol.languages[0]
        if language not in self.protocol.languages:
            raise EngineError(
                f"language {language!r} is not one of the study's {list(self.protocol.languages)}"
            )
        shown = self.localized(language).protocol.consent
        statements = {s.id: s.text for s in shown.statements}
        missing = [s for s in statements if s not in ticked]
        if missing:
            raise ConsentRefused(missing)
        params = self._recorded_parameters(url_params or {})
        returning = self.resume(params)
        if returning is not None:
            return returning
        token = new_token()
        now = self.clock()
        try:
            self._create(token, params, statements, sorted(set(ticked) & set(statements)), now, language)
        except IntegrityError:  # the same label consented at the same moment in another tab
            returning = self.resume(params)
            if returning is None:
                raise
            return returning
        return token

    def decline(self) -> None:
        """Someone read the consent page and chose not to take part. Only a content-free count is kept: one
        ``decline`` event with the study and the day (no participant row, no URL parameter, no time of day,
        nothing they ticked), so the flow report can say how many declined."""
        now = self.clock()
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        with self.db.write() as session:
            session.execute(
                _INSERT_EVENT,
                {
                    "at": day,
                    "study_id": self.version_id,  # the column keeps its first name
                    "participant_id": None,
                    "kind": DECLINE_EVENT,
                    "step_key": "consent",
                    "detail": {},
                },
            )

    def _create(
        self,
        token: str,
        params: dict[str, str],
        statements: dict[str, str],
        ticked: list[str],
        now: datetime,
        language: str,
    ) -> None:
        with self.db.write() as session:
            participant = Participant(
                version_id=self.version_id,
                token_hash=hash_token(token),
                label_hash=self.label_hash(params),
                url_params=params,
                language=language,
                step_index=1,
                status=ACTIVE,
                created_at=now,
                last_activity_at=now,
            )
            session.add(participant)
            session.flush()
            session.add(
                ConsentRecord(
                    participant_id=participant.id,
                    consent_text=self.localized(language).protocol.consent.text,
                    statements=statements,
                    ticked=ticked,
                    consented_at=now,
                )
            )
            self.record_event(session, participant, "consent", step="consent", at=now)
            if not self.protocol.questionnaires.entry:
                self._enroll(session, participant, stratum="", now=now)

    def _recorded_parameters(self, url_params: Mapping[str, object]) -> dict[str, str]:
        """The URL parameters as they are recorded: only the declared ones, each cut to a safe length."""
        declared = set(self.protocol.url_parameters)
        return {k: str(v)[:MAX_URL_PARAM_LENGTH] for k, v in url_params.items() if k in declared}

    def label_hash(self, url_params: Mapping[str, str]) -> str | None:
        """The stored (hashed) form of the participant label in ``url_params``; None without one."""
        name = self.protocol.participant_label
        value = url_params.get(name, "") if name else ""
        return hash_token(f"{name}={value}") if value else None

    def resume(self, url_params: Mapping[str, str]) -> str | None:
        """A returning participant (same ``participant_label``, e.g. PROLIFIC_PID, in the recruiting link):
        a fresh URL token for their own study, or None when the label is unknown or not configured.

        The protocol's ``resume_requires`` parameters (e.g. ``SESSION_ID``, which the platform sends per
        attempt) must equal the recorded ones too, else :class:`ResumeRefused` (logged as ``resume_refused``):
        knowing someone's label alone does not hand over their study. The token is replaced (only hashes
        are stored, so the old one can't be handed out again); a tab still open with the old link then
        shows the invalid-link page.
        """
        url_params = self._recorded_parameters(url_params)  # compared as they were recorded
        label = self.label_hash(url_params)
        if label is None:
            return None
        token = new_token()
        with self.db.write() as session:
            participant = session.scalar(
                select(Participant)
                .where(Participant.version_id == self.version_id, Participant.label_hash == label)
                .with_for_update()
            )
            if participant is None:
                return None
            differing = self._differing_resume_parameters(participant, url_params)
            if differing:
                self.record_event(
                    session, participant, "resume_refused", detail={"differ": differing}, at=self.clock()
                )
            else:
                participant.token_hash = hash_token(token)
                self.record_event(session, participant, "resume_by_label", at=self.clock())
        if differing:
            raise ResumeRefused(
                "this study was started from another session of the recruiting platform; please continue "
                "it with the link you got then, or contact the researchers"
            )
        return token

    def _differing_resume_parameters(
        self, participant: Participant, url_params: Mapping[str, str]
    ) -> list[str]:
        """Names (never values) of the ``resume_requires`` parameters that are missing or differ."""
        differing = []
        for name in self.protocol.resume_requires:
            given, recorded = url_params.get(name, ""), participant.url_params.get(name, "")
            if not given or not secrets.compare_digest(given.encode(), recorded.encode()):
                differing.append(name)
        return differing

    def mark_shown(self, token: str, index: int) -> None:
        """Stamp when the step at ``index`` was first shown (response times count from here). Idempotent."""
        with self.db.write() as session:
            session.execute(
                update(Participant)
                .where(
                    Participant.token_hash == hash_token(token),
                    Participant.step_index == index,
                    Participant.step_shown_at.is_(None),
                )
                .values(step_shown_at=self.clock())
            )

    def submit(
        self, token: str, step_key: str, answers: Mapping[str, object], *, next_shown: bool = False
    ) -> Position:
        """Validate and store one step's answers, and move the participant on — all or nothing.

        Submitting a step the participant already passed (double click, second tab, replay) changes
        nothing and returns the current position. Any other step that isn't current is refused.
        ``next_shown``: the caller shows the next step right away (the app does, in the same script run), so
        its first-shown time is stamped here instead of by a separate :meth:`mark_shown` transaction.
        """
        try:
            return self._submit(token, step_key, answers, next_shown=next_shown)
        except (AnswerError, StepConflict) as refused:
            self._log_refused_submit(token, step_key, refused)
            raise

    def _log_refused_submit(self, token: str, step_key: str, refused: AnswerError | StepConflict) -> None:
        """Record a refused submit (nothing else was written): problem codes of the step's own items, and
        how many fields were unknown — never the values, nor field names a client made up."""
        reason = "answers"
        if isinstance(refused, StepConflict):
            reason = "answer_locked" if isinstance(refused, AnswerLocked) else "step_conflict"
        detail: dict[str, object] = {"reason": reason}
        step = None
        if isinstance(refused, AnswerError):
            problems = {k: p.code for k, p in refused.errors.items() if p.code != "unknown_item"}
            detail["problems"] = problems
            detail["unknown_fields"] = len(refused.errors) - len(problems)
            step = refused.step
        with self.db.write() as session:
            participant = session.scalar(_BY_TOKEN, {"token_hash": hash_token(token)})
            if participant is not None:
                self.record_event(
                    session, participant, "submit_refused", step=step, detail=detail, at=self.clock()
                )
        LOG.warning("refused a submit of step %.32r: %s", step_key, detail)

    def _submit(
        self, token: str, step_key: str, answers: Mapping[str, object], *, next_shown: bool
    ) -> Position:
        now = self.clock()
        with self.db.write() as session:
            participant = self.participant_row(session, token, lock=True)
            path = self.participant_path(participant)
            current = path.current(participant.step_index)
            if step_key != current.key:
                if step_key in path.passed(participant.step_index):
                    passed = path.step(step_key)
                    if passed is not None and not passed.advice:
                        self._refuse_changed_initial(session, participant, passed, answers)
                    self.record_event(session, participant, "resubmit_ignored", step=step_key, at=now)
                    return self._position(participant)
                raise StepConflict(
                    f"step {step_key[:64]!r} is not this participant's current step ({current.key!r})"
                )
            if current.kind == "complete":
                raise StepConflict("this participant has already completed the study")
            stored = validate_answers(current, answers, self._conditions)
            shown_at = participant.step_shown_at or now
            rt_ms = max(0, round((now - shown_at).total_seconds() * 1000))
            if stored:  # one executemany, not one ORM flush per answer
                session.execute(
                    _INSERT_RESPONSES,
                    [
                        {
                            "participant_id": participant.id,
                            "step_key": current.key,
                            "item_id": a.item,
                            "value": a.value,
                            "value_num": a.number,
                            "shown_at": shown_at,
                            "submitted_at": now,
                            "rt_ms": rt_ms,
                        }
                        for a in stored
                    ],
                )
            if participant.arm is None:
                self._enroll(session, participant, self._stratum(stored), now)
                path = self.participant_path(participant)
            moved = {
                "step_index": participant.step_index + 1,
                "step_shown_at": now if next_shown else None,
                "last_activity_at": now,
            }
            if path.current(moved["step_index"]).kind == "complete":
                moved |= {"status": COMPLETED, "completed_at": now}
            _update(session, participant, moved)
            self.record_event(
                session, participant, "submit", step=current.key, detail={"answers": len(stored)}, at=now
            )
            return self._position(participant)

    def _refuse_changed_initial(
        self, session: Session, participant: Participant, step: Step, answers: Mapping[str, object]
    ) -> None:
        """Raise :class:`AnswerLocked` unless ``answers`` equal what is stored for the passed first half of a
        judge–advisor trial (a double click or a second tab sending the same answers is ignored as usual)."""
        try:
            sent = {a.item: a.value for a in validate_answers(step, answers, self._conditions)}
        except AnswerError:
            sent = None
        if sent != self._stored(session, participant, step.key):
            raise AnswerLocked(
                f"step {step.key!r}: the answer given before the AI's advice is stored and cannot be changed"
            )

    @staticmethod
    def _stored(session: Session, participant: Participant, step_key: str) -> dict[str, str]:
        rows = session.execute(
            select(Response.item_id, Response.value).where(
                Response.participant_id == participant.id, Response.step_key == step_key
            )
        )
        return {item: value for item, value in rows}

    def answers(self, token: str, step_key: str) -> dict[str, str]:
        """The stored answers (item → value) of a step the participant has passed (e.g. the first half of a
        judge–advisor trial, which its second half shows); empty for any other step."""
        with self.db.read() as session:
            participant = self.participant_row(session, token)
            if step_key not in self.participant_path(participant).passed(participant.step_index):
                return {}
            return self._stored(session, participant, step_key)

    # --- engagement: images enlarged on a trial ---------------------------------------------------------------
    def enlarge_image(self, token: str, step_key: str, image_kind: str, image: int) -> None:
        """Record that the participant enlarged an image of their current trial: the case photo
        (``case_photo``, image 1) or the ``image``-th reference of a kind the step shows. One audit event per
        click (exported as image_views.csv); refused (:class:`EngineError`, nothing written) for an image the
        step does not show — e.g. a reference before the advice of a judge–advisor trial."""
        now = self.clock()
        with self.db.write() as session:
            participant = self.participant_row(session, token)
            step = self.participant_path(participant).current(participant.step_index)
            if step.key != step_key or step.kind != "trial" or step.case_id is None:
                raise EngineError(f"step {step_key[:64]!r} is not this participant's current trial")
            if image_kind == "case_photo":
                shown = 1
            elif image_kind in REFERENCE_KINDS and step.advice:
                condition = self.protocol.condition(step.condition or "")
                case = self.loaded.bundle.manifest.case(step.case_id)
                shown = len(case_references(case, image_kind)) if condition.shows(image_kind) else 0
            else:
                shown = 0
            if not 1 <= image <= shown:
                raise EngineError(f"image {image_kind[:32]!r} {image} is not shown on step {step.key!r}")
            participant.last_activity_at = now
            self.record_event(
                session,
                participant,
                IMAGE_ENLARGE_EVENT,
                step=step.key,
                detail={"image_kind": image_kind, "image": image},
                at=now,
            )

    def record_event(
        self,
        session: Session,
        participant: Participant,
        kind: str,
        step: str | None = None,
        detail: dict | None = None,
        *,
        at: datetime,
    ) -> None:
        """Append to the audit log, in the same transaction as the write it records (one plain INSERT: the
        log is never read back in the transaction, so it needs no ORM object)."""
        if participant.id is None:  # just created: the row must exist for the event's foreign key
            session.flush()
        session.execute(
            _INSERT_EVENT,
            {
                "at": at,
                "study_id": self.version_id,  # the column keeps its first name
                "participant_id": participant.id,
                "kind": kind,
                "step_key": step,
                "detail": detail or {},
            },
        )

    def _stratum(self, answers: list) -> str:
        item_id = self.protocol.randomization.stratify_by
        if item_id is None:
            return ""
        code = next(int(a.value) for a in answers if a.item == item_id)
        return self.protocol.strata[code - 1]

    def _enroll(self, session: Session, participant: Participant, stratum: str, now: datetime) -> None:
        """Claim the next free slot of the stratum's allocation table in this transaction.

        One conditional UPDATE claims the slot, so two concurrent enrollments can never get the same one:
        the loser's UPDATE matches no row (the slot is no longer free) and it tries the next slot.
        """
        next_free = (
            select(AllocationSlot.id)
            .where(
                AllocationSlot.version_id == self.version_id,
                AllocationSlot.stratum == stratum,
                AllocationSlot.participant_id.is_(None),
            )
            .order_by(AllocationSlot.position)
            .limit(1)
        )
        for _ in range(1000):
            claimed = session.execute(
                update(AllocationSlot)
                .where(
                    AllocationSlot.id == next_free.scalar_subquery(), AllocationSlot.participant_id.is_(None)
                )
                .values(participant_id=participant.id, claimed_at=now)
                .returning(AllocationSlot.arm, AllocationSlot.position)
            ).first()
            if claimed is not None:
                break
            if session.scalar(next_free) is None:
                try:
                    with session.begin_nested():
                        extend_allocation_table(session, self.version_id, self.loaded, stratum)
                except IntegrityError:
                    pass  # another process extended it first
        else:  # pragma: no cover - would need 1000 lost races in a row
            raise EngineError("could not allocate a slot; please try again")
        arm = arm_by_id(self.protocol, claimed.arm)
        participant.stratum = stratum
        participant.arm = arm.id
        participant.sequence = arm.sequence
        participant.order_seed = self.order_seeds()
        participant.allocated_at = now
        self.record_event(
            session,
            participant,
            "allocate",
            detail={"stratum": stratum, "slot": claimed.position, "arm": arm.id},
            at=now,
        )
