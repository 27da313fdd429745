"""A participant's status as every reader sees it: the stored values, the drop-out rule, and the counts.

The engine writes a status (``active`` on enrolment, ``completed`` at the last step, ``withdrawn`` on
withdrawal); nobody writes ``dropped``: a participant *is* dropped out when still active but silent for longer
than the protocol's ``dropout_after_minutes``, so whoever reads a status (the engine's position, the export)
applies :func:`status_at`. The export's ``participants`` table carries that read status, and the dashboard
(:mod:`study.monitor`) and the analysis' CONSORT flow (:mod:`analysis.scores`, :mod:`analysis.consort`) count
from it with :func:`allocated` and :func:`completed` — one definition, so the dashboard's "completed" is the
report's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

ACTIVE = "active"
COMPLETED = "completed"
DROPPED = "dropped"
WITHDRAWN = "withdrawn"


def status_at(stored: str, last_activity_at: datetime, dropout_after_minutes: float, now: datetime) -> str:
    """The status at ``now``: the stored one, except that an active participant silent for longer than
    ``dropout_after_minutes`` counts as dropped out."""
    if stored == ACTIVE and now - last_activity_at > timedelta(minutes=dropout_after_minutes):
        return DROPPED
    return stored


def allocated(participants: pd.DataFrame) -> pd.Series:
    """Who was allocated to an arm (the export writes ``arm`` empty before allocation); everyone when the table
    has no ``arm`` column (CSV input without it)."""
    if "arm" not in participants.columns:
        return pd.Series(True, participants.index)
    return participants["arm"] != ""


def completed(participants: pd.DataFrame) -> pd.Series:
    """Who completed the study; without a ``status`` column (CSV input), every allocated participant."""
    if "status" not in participants.columns:
        return allocated(participants)
    return participants["status"] == COMPLETED
