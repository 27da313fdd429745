"""The one place the analysis touches the study engine (the export contract aside).

Everything else in ``analysis`` reads the study only through :mod:`formats.contract` and the export's frames;
this adapter brings in what only the engine can give: the database export (``--db``), the registered or given
protocol, and the study's own bots for the simulated power curve.
"""

from __future__ import annotations

import functools

from analysis.load import AnalysisInputError, StudyData, from_export
from analysis.simulation import BotSource
from db.session import DatabaseNotFound, open_existing
from study.botpower import EngineBotGenerator, plantable_constructs
from study.export import export_frames
from study.protocol.loading import LoadedProtocol, load_protocol
from study.registry import active_version, stored_protocol

__all__ = ["LoadedProtocol", "bots_of", "engine_bots", "load_db", "read_protocol"]


def load_db(
    url: str,
    protocol_id: str | None = None,
    *,
    design: str | None = None,
    baseline: str | None = None,
    compared: str | None = None,
    conditions: tuple[str, ...] | None = None,
) -> StudyData:
    """Export the study in the database at ``url`` (the active version of ``protocol_id``, else the only active
    study) and build the analysis input from the frames (:func:`analysis.load.from_export`)."""
    try:
        db = open_existing(url)
    except DatabaseNotFound as exc:
        raise AnalysisInputError(f"--db {exc}") from None
    try:
        frames = export_frames(db, protocol_id=protocol_id)
    except Exception as exc:  # the database boundary: any failure becomes one message, not a traceback
        raise AnalysisInputError(
            f"--db {url}: cannot export the study data ({type(exc).__name__}: {exc})"
        ) from None
    finally:
        db.dispose()
    return from_export(frames, design=design, baseline=baseline, compared=compared, conditions=conditions)


def read_protocol(protocol_path: str | None, db_url: str | None) -> LoadedProtocol:
    """The protocol file ``protocol_path``, else the study registered in ``db_url``."""
    try:
        if protocol_path:
            return load_protocol(protocol_path)
        db = open_existing(db_url)
        try:
            return stored_protocol(active_version(db))
        finally:
            db.dispose()
    except Exception as exc:  # the protocol/database boundary: one message, not a traceback
        source = f"--protocol {protocol_path}" if protocol_path else f"--db {db_url}"
        raise AnalysisInputError(
            f"{source}: cannot read the protocol ({type(exc).__name__}: {exc})"
        ) from None


def engine_bots(
    protocol: LoadedProtocol,
    design: str,
    construct: str | None,
    *,
    population: int | None,
    seed: int,
    progress: bool,
) -> tuple[EngineBotGenerator | None, str | None]:
    """The study engine's bots planting effects on ``construct`` (default: the first plantable one) →
    ``(generator, None)``, or ``(None, reason)`` when they cannot serve this analysis."""
    plantable = plantable_constructs(protocol)
    if protocol.protocol.design != design:
        return None, f"the protocol's design is {protocol.protocol.design!r}, the analysis' {design!r}"
    if construct is not None and construct not in plantable:
        return None, (
            f"construct {construct!r} is not a Likert construct asked under both conditions "
            f"(the bots can plant effects on: {', '.join(plantable) or 'none'})"
        )
    if not plantable:
        return None, "the protocol has no Likert construct asked under both conditions"
    return EngineBotGenerator(protocol, construct, pool_size=population, seed=seed, progress=progress), None


def bots_of(protocol: LoadedProtocol) -> BotSource:
    """The study's bots as the analysis takes them (:class:`analysis.simulation.BotSource`): the command and
    the dashboard pass them to :func:`analysis.report.build_report` when the protocol is known."""
    return functools.partial(engine_bots, protocol)
