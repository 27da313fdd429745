"""The same engine on PostgreSQL: migrations, the full flow, exports and concurrent processes."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from db.models import Base
from study.export import export_frames
from study.simulate import Policy, simulate
from tests.test_concurrency import BOTS_PER_PROCESS, PROCESSES, run_workers

pytestmark = pytest.mark.postgres


def test_migrations_match_models_and_events_are_append_only(protocol_file, make_engine, postgres_url):
    engine = make_engine(protocol_file(), postgres_url)
    with engine.db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with pytest.raises(Exception, match="append-only"), engine.db.write() as session:
        session.execute(text("DELETE FROM events"))


def test_simulation_and_export(protocol_file, make_engine, postgres_url):
    engine = make_engine(protocol_file("within"), postgres_url)
    simulate(engine, 12, seed=1, policy=Policy(kind="effect", effects={"trust": 1}), progress=False)
    frames = export_frames(engine.db)
    assert len(frames["participants"]) == 12
    assert set(frames["responses"]["period"].replace("", None).dropna()) == {1, 2}


@pytest.mark.slow
def test_concurrent_processes(protocol_file, make_engine, postgres_url):
    path = protocol_file()
    engine = make_engine(path, postgres_url)
    results = run_workers(postgres_url, str(path))
    assert sum(len(r) for r in results) == PROCESSES * BOTS_PER_PROCESS
    participants = export_frames(engine.db)["participants"]
    assert len(participants) == PROCESSES * BOTS_PER_PROCESS and set(participants["status"]) == {"completed"}
    allocation = export_frames(engine.db)["allocation"]
    claimed = allocation[allocation["claimed"] == 1]
    for _, group in claimed.groupby("stratum"):
        assert sorted(group["position"]) == list(range(len(group)))
