"""Participants' data rights: withdrawal on request, and purging recorded identifiers after the retention time.

Both keep the append-only audit log append-only: they add a content-free event (what happened, to whom by
internal id, how many rows) and never need to edit one, because events never hold answers or identifiers.
The participant row itself stays, stripped, so the allocation table and the audit log still explain every
slot and event (the claimed slot keeps block randomisation balanced and auditable).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import ConsentRecord, Event, InteractionTurn, Job, Participant, Response, StudyVersion
from formats.contract import WITHDRAW_EVENT
from formats.status import WITHDRAWN
from study.engine import StudyEngine
from study.refusals import EngineError
from study.tokens import hash_token


class DataRightsError(EngineError):
    """A withdrawal that can't be done (unknown participant, already withdrawn); nothing was changed."""


@dataclass(frozen=True)
class Withdrawal:
    participant_id: str  # the pseudonymous id the exports used
    answers_removed: int


def withdraw(engine: StudyEngine, *, token: str | None = None, label: str | None = None) -> Withdrawal:
    """Remove one participant's answers, consent record, URL parameters and label, in one transaction.

    The participant is found by their study link's ``token`` or by the protocol's ``participant_label``
    value (e.g. the PROLIFIC_PID a participant writes to the researchers with). Exports and analyses leave
    them out from then on; the dashboard counts them as withdrawn.
    """
    if (token is None) == (label is None):
        raise DataRightsError("name the participant by exactly one of --token or --label")
    if token is not None:
        where, named = Participant.token_hash == hash_token(token), "this token"
    else:
        name = engine.protocol.participant_label
        if name is None:
            raise DataRightsError("the protocol declares no participant_label: withdraw by --token instead")
        where, named = Participant.label_hash == engine.label_hash({name: label or ""}), f"{name}={label!r}"
    now = engine.clock()
    with engine.db.write() as session:
        participant = session.scalar(
            select(Participant)
            .where(where, Participant.version_id.in_(_versions(session, engine)))
            .with_for_update()
        )
        if participant is None:
            raise DataRightsError(f"no participant of this study has {named}")
        if participant.withdrawn_at is not None:
            raise DataRightsError(f"{participant.public_id} has already withdrawn")
        removed = session.execute(delete(Response).where(Response.participant_id == participant.id)).rowcount
        session.execute(delete(ConsentRecord).where(ConsentRecord.participant_id == participant.id))
        # their questions to the live model and its answers (interactive conditions), then the jobs behind them
        jobs = set(
            session.scalars(
                select(InteractionTurn.job_id).where(
                    InteractionTurn.participant_id == participant.id, InteractionTurn.job_id.is_not(None)
                )
            )
        )
        session.execute(delete(InteractionTurn).where(InteractionTurn.participant_id == participant.id))
        if jobs:
            still_used = select(InteractionTurn.job_id).where(InteractionTurn.job_id.in_(jobs))
            session.execute(delete(Job).where(Job.id.in_(jobs), Job.id.not_in(still_used)))
        _strip_identifiers(participant, now)
        participant.status = WITHDRAWN
        participant.withdrawn_at = now
        session.add(
            Event(
                at=now,
                version_id=participant.version_id,
                participant_id=participant.id,
                kind=WITHDRAW_EVENT,
                detail={"answers_removed": removed},
            )
        )
        return Withdrawal(participant.public_id, removed)


def purge_identifiers(engine: StudyEngine) -> int:
    """Purge URL parameters and labels recorded longer than the protocol's ``retention_days`` ago (counted
    from each participant's last activity, so nobody mid-study loses their resume link); returns how many.

    Each purge is logged as an ``identifiers_purged`` event. A protocol without ``retention_days`` keeps them.
    """
    days = engine.protocol.retention_days
    if days is None:
        return 0
    now = engine.clock()
    with engine.db.write() as session:
        due = session.scalars(
            select(Participant)
            .where(
                Participant.version_id.in_(_versions(session, engine)),
                Participant.identifiers_purged_at.is_(None),
                Participant.last_activity_at < now - timedelta(days=days),
            )
            .with_for_update()
        ).all()
        for participant in due:
            _strip_identifiers(participant, now)
            session.add(
                Event(
                    at=now,
                    version_id=participant.version_id,
                    participant_id=participant.id,
                    kind="identifiers_purged",
                    detail={"retention_days": days},
                )
            )
        return len(due)


def _versions(session: Session, engine: StudyEngine) -> list[int]:
    """Every registered version of the engine's protocol: a participant of an earlier version counts too."""
    return list(
        session.scalars(select(StudyVersion.id).where(StudyVersion.protocol_id == engine.protocol.study.id))
    )


def _strip_identifiers(participant: Participant, now) -> None:
    participant.url_params = {}
    participant.label_hash = None
    participant.identifiers_purged_at = now
