"""What the researcher dashboard shows, computed from the database (plain pandas, tested without Streamlit)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo

import pandas as pd

from db.models import Event, utcnow
from db.session import Database
from formats.contract import DECLINE_EVENT, IDENTIFIERS_SHOWN_EVENT, WITHDRAW_EVENT
from formats.status import ACTIVE, DROPPED, allocated, completed
from study.allocation import arms
from study.export import export_frames
from study.path import Step, participant_path, step_order
from study.protocol.loading import LoadedProtocol

PARTICIPANT_TABLE_COLUMNS = (
    "participant_id",
    "arm",
    "status",
    "current_step",
    "last_activity",
    "attention_failures",
)


@dataclass(frozen=True)
class Monitor:
    """A snapshot of the study: every table the dashboard draws, from one consistent export.

    ``steps`` is the protocol's step order (:func:`study.path.step_order`): tables list steps in it.
    ``arms`` is the protocol's arm order (conditions, or sequences ``S1``…``Sm``): enrollment lists every arm
    in it, including arms nobody was allocated to yet. ``labels`` names steps for readers (:func:`step_labels`).
    """

    frames: dict[str, pd.DataFrame]
    steps: tuple[str, ...]
    arms: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, db: Database, version_id: int, loaded: LoadedProtocol) -> Monitor:
        """The dashboard's snapshot of the registered study ``version_id`` whose protocol is ``loaded`` (the
        running engine's: its steps order the tables)."""
        return cls(
            export_frames(db, version_id=version_id),
            step_order(loaded),
            tuple(a.id for a in arms(loaded.protocol)),
            step_labels(loaded),
        )

    def label(self, step: str) -> str:
        """A step's readable name; its key when the protocol doesn't know it (an older version's step)."""
        return self.labels.get(step, step)

    @property
    def participants(self) -> pd.DataFrame:
        return self.frames["participants"]

    def enrollment(self) -> pd.DataFrame:
        """Allocated participants per stratum × arm, beside the slots the allocation table has used."""
        allocation = self.frames["allocation"]
        claimed = (
            allocation[allocation["claimed"] == 1].groupby(["stratum", "arm"]).size().rename("allocated")
        )
        finished = (
            self.participants[completed(self.participants)]
            .groupby(["stratum", "arm"])
            .size()
            .rename("completed")
        )
        table = pd.concat([claimed, finished], axis=1)
        if self.arms and len(table):
            strata = table.index.get_level_values("stratum").unique()
            table = table.reindex(pd.MultiIndex.from_product([strata, self.arms], names=["stratum", "arm"]))
        table = table.fillna(0).astype(int).reset_index()
        rank = {arm: i for i, arm in enumerate(self.arms)}
        return table.sort_values(
            ["stratum", "arm"],
            key=lambda c: c.map(rank) if c.name == "arm" and rank else c,
            ignore_index=True,
        )

    def funnel(self) -> pd.DataFrame:
        """How many participants got past each step (in path order), from the audit log's submits; ``label``
        is the step's readable name."""
        events = self.frames["events"]
        submits = events[events["kind"] == "submit"].groupby("step")["participant_id"].nunique()
        steps = sorted(submits.index, key=_ranker(self.steps))
        rows = [("consent", len(self.participants))] + [(step, int(submits[step])) for step in steps]
        rows.append(("complete", int(completed(self.participants).sum())))
        table = pd.DataFrame(rows, columns=["step", "participants"])
        return table.assign(label=table["step"].map(self.label))

    def participant_table(self, identifiers: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per participant: pseudonymous id, arm, status, current step (readable), last activity
        (UTC; the latest logged event, else the start) and failed attention checks. ``identifiers`` (the
        participants frame of an export with identifiers) adds its recorded URL parameters."""
        p = self.participants
        if p.empty:
            return pd.DataFrame(columns=list(PARTICIPANT_TABLE_COLUMNS))
        events = self.frames["events"]
        logged = events[events["participant_id"] != ""]
        latest = pd.to_datetime(logged.groupby("participant_id")["at"].max(), utc=True, format="ISO8601")
        started = pd.to_datetime(p["started_at"], utc=True, format="ISO8601")
        table = pd.DataFrame(
            {
                "participant_id": p["participant_id"],
                "arm": p["arm"],
                "status": p["status"],
                "current_step": p["current_step"].map(self.label),
                "last_activity": p["participant_id"].map(latest).fillna(started),
                "attention_failures": p["attention_failures"],
            }
        )
        if identifiers is not None:
            extra = [c for c in identifiers.columns if c not in self.participants.columns]
            table = table.merge(identifiers[["participant_id", *extra]], on="participant_id", how="left")
        return table

    def enrollment_by_day(self, tz: tzinfo) -> pd.DataFrame:
        """Cumulative participants enrolled (consented) and completed at the end of each calendar day in the
        time zone ``tz``, every day from the first enrollment to the latest one or completion."""
        p = self.participants
        if p.empty:
            return pd.DataFrame(columns=["day", "enrolled", "completed"])

        def days(stamps: pd.Series) -> pd.Series:
            stamps = stamps[stamps != ""]
            return pd.to_datetime(stamps, utc=True, format="ISO8601").dt.tz_convert(tz).dt.date

        joined, finished = days(p["started_at"]), days(p.loc[completed(p), "completed_at"])
        span = pd.date_range(joined.min(), max([joined.max(), *finished]), freq="D").date
        return pd.DataFrame(
            {
                "day": span,
                "enrolled": joined.value_counts().reindex(span, fill_value=0).cumsum().to_numpy(),
                "completed": finished.value_counts().reindex(span, fill_value=0).cumsum().to_numpy(),
            }
        )

    def step_times(self) -> pd.DataFrame:
        """Median and quartiles of time on each step (seconds), from response times."""
        responses = self.frames["responses"].drop_duplicates(["participant_id", "step"])
        if responses.empty:
            return pd.DataFrame(columns=["step", "median_s", "q1_s", "q3_s", "n"])
        seconds = responses.assign(seconds=responses["rt_ms"].astype(float) / 1000).groupby("step")["seconds"]
        table = pd.DataFrame(
            {
                "median_s": seconds.median(),
                "q1_s": seconds.quantile(0.25),
                "q3_s": seconds.quantile(0.75),
                "n": seconds.size(),
            }
        ).reset_index()
        table["rank"] = table["step"].map(_ranker(self.steps))
        return table.sort_values("rank").drop(columns="rank").reset_index(drop=True)

    def status_counts(self) -> pd.DataFrame:
        """Participants by status, with attention-check failures and exclusions; ``declined``: how many read
        the consent page and did not take part (the content-free ``decline`` events: they are nobody's row,
        so no other count includes them)."""
        p = self.participants
        kinds = self.frames["events"]["kind"]
        return pd.DataFrame(
            {
                "consented": [len(p)],
                "declined": [int((kinds == DECLINE_EVENT).sum())],
                "allocated": [int(allocated(p).sum())],
                "active": [int((p["status"] == ACTIVE).sum())],
                "completed": [int(completed(p).sum())],
                "dropped": [int((p["status"] == DROPPED).sum())],
                "withdrawn": [int((kinds == WITHDRAW_EVENT).sum())],
                "failed_attention_check": [int((p["attention_failures"] > 0).sum())],
                "excluded": [int(p["excluded"].sum())],
            }
        )

    def last_activity(self) -> str:
        events = self.frames["events"]
        return str(events["at"].max()) if len(events) else ""

    def rater_progress(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Images rated per rater, and raters per image (against the protocol's ``raters_per_image``)."""
        ratings = self.frames.get("ratings")
        if ratings is None or ratings.empty:
            empty = pd.DataFrame(columns=["rater_id", "images_rated"])
            return empty, pd.DataFrame(columns=["image_id", "raters"])
        per_rater = ratings.groupby("rater_id")["image_id"].nunique().rename("images_rated").reset_index()
        per_image = ratings.groupby("image_id")["rater_id"].nunique().rename("raters").reset_index()
        return per_rater, per_image


def step_labels(loaded: LoadedProtocol) -> dict[str, str]:
    """A readable name for every step key of the protocol's paths ("Case 3 of 12", "Questions after block
    1"), for the funnel and the participant table; keys are the same in every arm, so the first arm's path
    that has a key names it."""
    steps: dict[str, Step] = {}
    for arm in arms(loaded.protocol):
        for step in participant_path(loaded, arm.id, 0):
            steps.setdefault(step.key, step)
    blocks = len({step.period for step in steps.values() if step.period})
    return {key: _step_label(step, blocks > 1) for key, step in steps.items()}


_FIXED_LABELS = {
    "consent": "Consent",
    "entry": "Entry questions",
    "instructions": "Instructions",
    "post": "Final questions",
    "debrief": "Debrief",
    "complete": "Completed",
}


def _step_label(step: Step, blocks: bool) -> str:
    if step.kind == "trial":
        case = f"Case {step.trial_number} of {step.trials_total}"
        if not step.advice:
            return f"{case}: own diagnosis (before the AI's)"
        return f"{case}: after the AI's advice" if step.initial_step else case
    if step.section == "post_block":
        return f"Questions after block {step.period}" if blocks else "Questions after the cases"
    return _FIXED_LABELS.get(step.section, step.key)


def record_identifier_view(db: Database, version_id: int, where: str) -> None:
    """Log that a researcher had participants' recorded platform ids shown (``where``: the page), in the
    append-only audit log, so the event log says whenever identifiers left the database."""
    with db.write() as session:
        session.add(
            Event(at=utcnow(), version_id=version_id, kind=IDENTIFIERS_SHOWN_EVENT, detail={"where": where})
        )


def _ranker(steps: tuple[str, ...]) -> Callable[[str], tuple[int, str]]:
    """Sort key of step keys in the protocol's order; keys it doesn't know (an older version's) go last."""
    rank = {key: index for index, key in enumerate(steps)}
    return lambda key: (rank.get(key, len(rank)), key)


def rater_table(db: Database, protocol_id: str) -> pd.DataFrame:
    """Every rater with their panel slot, images assigned and rated, and last activity (for researchers)."""
    from sqlalchemy import func, select

    from db.models import Rater, RatingAssignment, rater_public_id, rater_status

    with db.read() as session:
        rows = session.execute(
            select(
                Rater.id,
                Rater.name,
                Rater.slot,
                Rater.active,
                Rater.password_hash.is_not(None),
                func.count(RatingAssignment.id),
                func.count(RatingAssignment.rated_at),
                Rater.last_activity_at,
            )
            .outerjoin(RatingAssignment, RatingAssignment.rater_id == Rater.id)
            .where(Rater.protocol_id == protocol_id)
            .group_by(Rater.id)
            .order_by(Rater.id)
        ).all()
    return pd.DataFrame(
        [
            {
                "rater_id": rater_public_id(r[0]),
                "name": r[1],
                "slot": r[2] + 1,
                "status": rater_status(r[3], r[4]),
                "assigned": r[5],
                "rated": r[6],
                "last_activity": r[7].isoformat(timespec="seconds") if r[7] else "",
            }
            for r in rows
        ],
        columns=["rater_id", "name", "slot", "status", "assigned", "rated", "last_activity"],
    )
