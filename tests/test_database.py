"""Schema migrations, protocol registration and the `skingen-study` commands around them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from app.study_command import main
from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.models import Base
from db.session import Database
from study.engine import StudyEngine
from study.protocol.loading import load_protocol
from study.registry import RegistryError, register
from tests.participants import TICKED


def _schema_diff(db: Database) -> list:
    with db.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def test_migrations_build_exactly_the_models_and_downgrade_to_nothing(database_url):
    db = Database(database_url)
    upgrade(db.engine)
    assert current_revision(db.engine) == head_revision()
    assert _schema_diff(db) == []
    assert {"studies", "participants", "responses", "events", "allocation_slots"} <= set(
        inspect(db.engine).get_table_names()
    )
    downgrade(db.engine)
    assert current_revision(db.engine) is None
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade(db.engine)  # and back up again on the now empty database: every downgrade undid its upgrade
    assert _schema_diff(db) == []


def test_events_are_append_only(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    engine.consent(TICKED)
    for statement in ("DELETE FROM events", "UPDATE events SET kind = 'x'"):
        with pytest.raises(Exception, match="append-only"), engine.db.write() as session:
            session.execute(text(statement))


def test_sqlite_connections_are_configured_for_concurrency(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/p.db")
    with db.engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30000, "foreign_keys": 1}


def test_register_is_idempotent_and_refuses_a_changed_protocol(protocol_file, tmp_path):
    db = Database(f"sqlite:///{tmp_path}/r.db")
    path = protocol_file()
    first = register(db, load_protocol(path))
    assert register(db, load_protocol(path)).id == first.id
    changed = protocol_file(study__version="1.1.0")
    assert register(db, load_protocol(changed)).version == "1.1.0"  # no participants yet: allowed
    engine = StudyEngine.open(db, str(changed))
    engine.consent(TICKED)
    with pytest.raises(RegistryError, match=r"already runs version '1.1.0'.*--allow-protocol-change"):
        register(db, load_protocol(path))
    assert StudyEngine.open(db).protocol.study.version == "1.1.0"  # refused: still the running version
    register(db, load_protocol(path), allow_change=True)
    assert StudyEngine.open(db).protocol.study.version == "1.0.0"


def test_unregistered_or_edited_protocol_is_refused(protocol_file, tmp_path):
    db = Database(f"sqlite:///{tmp_path}/u.db")
    with pytest.raises(RegistryError, match="holds no study database: run `skingen-study init`"):
        StudyEngine.open(db)
    register(db, load_protocol(protocol_file()))
    with pytest.raises(RegistryError, match=r"is not registered .* \(or was edited since\)"):
        StudyEngine.open(db, str(protocol_file(completion__code="OTHER")))


def test_cli_init_simulate_export(protocol_file, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/cli.db"
    path = str(protocol_file("within"))
    assert main(["init", "--db", url, "--protocol", path]) == 0
    assert (
        main(
            [
                "simulate",
                "--db",
                url,
                "--protocol",
                path,
                "-n",
                "8",
                "--seed",
                "1",
                "--quiet",
                "--effect",
                "trust=1",
                "--dropout-rate",
                "0",
            ]
        )
        == 0
    )
    assert "8 bots: 8 completed" in capsys.readouterr().out
    assert main(["export", "--db", url, "--out", str(tmp_path / "out")]) == 0
    changed = protocol_file("within", study__version="2")
    assert main(["init", "--db", url, "--protocol", str(changed)]) == 2
    assert "--allow-protocol-change" in capsys.readouterr().err


def test_cli_reports_bad_effect_and_bad_protocol(protocol_file, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/bad.db"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"study": {"id": "x"}}))
    assert main(["init", "--db", url, "--protocol", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "study.title" in err and "consent" in err
    with pytest.raises(SystemExit, match="CONSTRUCT=POINTS"):
        main(["simulate", "--db", url, "--effect", "trust"])


def test_study_and_db_never_import_torch():
    code = (
        "import sys, db.session, db.migrate, study.engine, study.export, study.simulate, app.study_command, "
        "study.botpower, study.rating, study.auth, study.monitor, formats.bundle, "
        "skingen.bundle.demo.writer; "
        "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
