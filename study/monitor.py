"""What the researcher dashboard shows, computed from the database (plain pandas, tested without Streamlit)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from db.session import Database
from formats.contract import WITHDRAW_EVENT
from formats.status import ACTIVE, DROPPED, allocated, completed
from study.allocation import arms
from study.export import export_frames
from study.path import step_order
from study.protocol.loading import LoadedProtocol


@dataclass(frozen=True)
class Monitor:
    """A snapshot of the study: every table the dashboard draws, from one consistent export.

    ``steps`` is the protocol's step order (:func:`study.path.step_order`): tables list steps in it.
    ``arms`` is the protocol's arm order (conditions, or sequences ``S1``…``Sm``): enrollment lists every arm
    in it, including arms nobody was allocated to yet.
    """

    frames: dict[str, pd.DataFrame]
    steps: tuple[str, ...]
    arms: tuple[str, ...] = ()

    @classmethod
    def load(cls, db: Database, version_id: int, loaded: LoadedProtocol) -> Monitor:
        """The dashboard's snapshot of the registered study ``version_id`` whose protocol is ``loaded`` (the
        running engine's: its steps order the tables)."""
        return cls(
            export_frames(db, version_id=version_id),
            step_order(loaded),
            tuple(a.id for a in arms(loaded.protocol)),
        )

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
        """How many participants got past each step (in path order), from the audit log's submits."""
        events = self.frames["events"]
        submits = events[events["kind"] == "submit"].groupby("step")["participant_id"].nunique()
        steps = sorted(submits.index, key=_ranker(self.steps))
        rows = [("consent", len(self.participants))] + [(step, int(submits[step])) for step in steps]
        rows.append(("complete", int(completed(self.participants).sum())))
        return pd.DataFrame(rows, columns=["step", "participants"])

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
        """Participants by status, with attention-check failures and exclusions."""
        p = self.participants
        return pd.DataFrame(
            {
                "consented": [len(p)],
                "allocated": [int(allocated(p).sum())],
                "active": [int((p["status"] == ACTIVE).sum())],
                "completed": [int(completed(p).sum())],
                "dropped": [int((p["status"] == DROPPED).sum())],
                "withdrawn": [int((self.frames["events"]["kind"] == WITHDRAW_EVENT).sum())],
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


def _ranker(steps: tuple[str, ...]) -> Callable[[str], tuple[int, str]]:
    """Sort key of step keys in the protocol's order; keys it doesn't know (an older version's) go last."""
    rank = {key: index for index, key in enumerate(steps)}
    return lambda key: (rank.get(key, len(rank)), key)


def wide_responses(responses: pd.DataFrame, steps: tuple[str, ...]) -> pd.DataFrame:
    """One row per participant, one column per answered variable (``<step>__<item>``), for spreadsheets;
    columns in the step order ``steps`` (:func:`study.path.step_order`)."""
    if responses.empty:
        return pd.DataFrame(columns=["participant_id"])
    keyed = responses.assign(variable=responses["step"] + "__" + responses["item"])
    wide = keyed.pivot_table(index="participant_id", columns="variable", values="value", aggfunc="first")
    rank = _ranker(steps)
    columns = sorted(wide.columns, key=lambda v: (rank(v.split("__", 1)[0]), v))
    return wide[columns].reset_index()


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
