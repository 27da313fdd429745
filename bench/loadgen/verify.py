"""After a run, every simulated participant's answers checked in the database: each expected answer stored
exactly once, each enlarged image logged once."""

from __future__ import annotations

from pathlib import Path

from bench.loadgen.participants import Outcome


def verify(db_url: str, protocol: Path, outcomes: list[Outcome]) -> tuple[int, int, list[str]]:
    """(answers stored, answers expected, problems) for the simulated participants' tokens; an image a
    participant enlarged is one logged ``image_enlarge`` event, no more, no fewer."""
    from sqlalchemy import func, select

    from db.models import Event, Response
    from db.session import Database
    from formats.contract import IMAGE_ENLARGE_EVENT
    from study.engine import StudyEngine
    from study.path import expected_fields

    db = Database(db_url)
    engine = StudyEngine.open(db, str(protocol))
    stored_total = expected_total = 0
    problems = []
    try:
        for outcome in outcomes:
            if outcome.token is None:
                problems.append(f"{outcome.label}: no token")
                continue
            position = engine.position(outcome.token)
            expected = sorted((s.key, f) for s in engine.path_of(outcome.token) for f in expected_fields(s))
            with db.read() as session:
                stored = sorted(
                    session.execute(
                        select(Response.step_key, Response.item_id).where(
                            Response.participant_id == position.participant_id
                        )
                    ).all()
                )
                enlarged = session.scalar(
                    select(func.count()).where(
                        Event.participant_id == position.participant_id, Event.kind == IMAGE_ENLARGE_EVENT
                    )
                )
            if enlarged != outcome.enlarged:
                problems.append(
                    f"{outcome.label}: {enlarged} enlarged images logged, {outcome.enlarged} clicked"
                )
            stored_total += len(stored)
            expected_total += len(expected)
            if not position.completed:
                problems.append(f"{outcome.label}: not completed in the database")
            if [tuple(row) for row in stored] != expected:
                problems.append(f"{outcome.label}: {len(stored)} answers stored, {len(expected)} expected")
    finally:
        db.dispose()
    return stored_total, expected_total, problems
