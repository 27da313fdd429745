"""Turns with the live model on interactive trials: a participant's questions and the worker's answers.

Kept apart from the engine's steps: a turn never moves a participant on, and its rows
(:class:`db.models.InteractionTurn`) are written by the app as the worker answers. Each call is one short
transaction through the engine's participant lookup (so an invalid, foreign or withdrawn link is refused the
same way) and its audit log, which records that a turn happened, never its text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol as Interface

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import InteractionTurn, Participant
from db.session import Database
from study.path import ParticipantPath
from study.protocol.model import Protocol
from study.refusals import TurnRefused


class TurnHost(Interface):
    """What a turn needs of the study engine (:class:`study.engine.StudyEngine` is one): the database, the
    protocol, the clock, the participant behind a token, their path, and the audit log."""

    db: Database
    protocol: Protocol
    clock: Callable[[], datetime]

    def participant_row(self, session: Session, token: str, *, lock: bool = False) -> Participant: ...

    def participant_path(self, participant: Participant) -> ParticipantPath: ...

    def record_event(
        self,
        session: Session,
        participant: Participant,
        kind: str,
        step: str | None = None,
        detail: dict | None = None,
        *,
        at: datetime,
    ) -> None: ...


@dataclass(frozen=True)
class TurnRecord:
    """A stored turn with the live model (``answered_at`` is None while the worker has not answered)."""

    turn: int
    kind: str  # question | references
    job_id: int | None
    question: str
    answer: str
    condition: str | None
    model_id: str | None
    latency_ms: int | None
    images: tuple[str, ...]
    asked_at: datetime
    answered_at: datetime | None

    @classmethod
    def of(cls, row: InteractionTurn) -> TurnRecord:
        return cls(
            row.turn,
            row.kind,
            row.job_id,
            row.question,
            row.answer,
            row.condition,
            row.model_id,
            row.latency_ms,
            tuple(row.images),
            row.asked_at,
            row.answered_at,
        )


class TurnLog:
    """The live-model turns of one study's participants (``engine.turn_log``)."""

    def __init__(self, engine: TurnHost) -> None:
        self.engine = engine

    def of(self, token: str, step_key: str) -> list[TurnRecord]:
        """The participant's turns on ``step_key``, in order."""
        with self.engine.db.read() as session:
            participant = self.engine.participant_row(session, token)
            rows = session.scalars(
                select(InteractionTurn)
                .where(InteractionTurn.participant_id == participant.id, InteractionTurn.step_key == step_key)
                .order_by(InteractionTurn.turn)
            )
            return [TurnRecord.of(row) for row in rows]

    def ask(self, token: str, step_key: str, kind: str, question: str, job_id: int | None) -> int:
        """Store a question (or a request for references) on the current interactive trial; its turn number.

        Refused (:class:`TurnRefused`) off the current step, outside interactive conditions, before the
        advice of a judge–advisor trial, and past the protocol's ``follow_up_questions``. The audit log
        records that a turn happened, never its text.
        """
        if kind not in ("question", "references"):
            raise ValueError(f"kind: expected question or references, got {kind!r}")
        now = self.engine.clock()
        with self.engine.db.write() as session:
            participant = self.engine.participant_row(session, token, lock=True)
            step = self.engine.participant_path(participant).current(participant.step_index)
            if step.key != step_key or step.kind != "trial":
                raise TurnRefused("not_current", f"step {step_key!r} is not this participant's current trial")
            if not step.advice:  # the model's answers are advice: not before the first answer is stored
                raise TurnRefused("before_advice", f"step {step_key!r} asks for the answer before the advice")
            condition = self.engine.protocol.condition(step.condition or "")
            if not condition.interactive:
                raise TurnRefused("not_interactive", f"condition {condition.id!r} is not interactive")
            earlier = session.scalars(
                select(InteractionTurn.kind).where(
                    InteractionTurn.participant_id == participant.id, InteractionTurn.step_key == step_key
                )
            ).all()
            if kind == "question" and earlier.count("question") >= condition.follow_up_questions:
                raise TurnRefused(
                    "limit_reached", f"{condition.follow_up_questions} follow-up questions per case at most"
                )
            turn = len(earlier) + 1
            session.add(
                InteractionTurn(
                    participant_id=participant.id,
                    step_key=step_key,
                    turn=turn,
                    kind=kind,
                    job_id=job_id,
                    question=question,
                    asked_at=now,
                )
            )
            participant.last_activity_at = now
            self.engine.record_event(
                session, participant, "turn", step=step_key, detail={"turn": turn, "kind": kind}, at=now
            )
            return turn

    def retry(self, token: str, step_key: str, turn: int, job_id: int) -> bool:
        """Give an unanswered turn a new job (its last one failed); the turn keeps its number."""
        return self._update_open_turn(token, step_key, turn, job_id=job_id)

    def answer(
        self,
        token: str,
        step_key: str,
        turn: int,
        *,
        answer: str,
        condition: str | None,
        model_id: str | None,
        latency_ms: int | None,
        images: tuple[str, ...] = (),
    ) -> bool:
        """Complete a turn with the worker's answer, once (False when it was already complete)."""
        return self._update_open_turn(
            token,
            step_key,
            turn,
            answer=answer,
            condition=condition,
            model_id=model_id,
            latency_ms=latency_ms,
            images=list(images),
            answered_at=self.engine.clock(),
        )

    def _update_open_turn(self, token: str, step_key: str, turn: int, **values: object) -> bool:
        """Set ``values`` on the participant's turn if it is still unanswered (one conditional UPDATE, so a
        late or second answer changes nothing); True when it was."""
        with self.engine.db.write() as session:
            participant = self.engine.participant_row(session, token)
            updated = session.execute(
                update(InteractionTurn)
                .where(
                    InteractionTurn.participant_id == participant.id,
                    InteractionTurn.step_key == step_key,
                    InteractionTurn.turn == turn,
                    InteractionTurn.answered_at.is_(None),
                )
                .values(**values)
            )
            return updated.rowcount == 1
