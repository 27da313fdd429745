"""Bots whose answers vary over cases (study.simulate.CaseEffects), and ``simulate --seed`` repeating itself."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from app.study_command import main
from study.simulate import CaseEffects, Policy, simulate, standard_normal

CASE_FLAGS = [
    "--case-sd",
    "trust=0.6",
    "--case-condition-sd",
    "trust=0.4",
    "--participant-condition-sd",
    "0.3",
]


def _simulate_and_export(tmp_path, protocol: str, name: str, seed: int) -> dict[str, bytes]:
    url = f"sqlite:///{tmp_path}/{name}.db"
    assert main(["init", "--db", url, "--protocol", protocol]) == 0
    common = ["--db", url, "--protocol", protocol, "-n", "8", "--seed", str(seed), "--quiet"]
    assert main(["simulate", *common, "--effect", "trust=0.5", *CASE_FLAGS]) == 0
    out = tmp_path / f"export-{name}"
    assert main(["export", "--db", url, "--out", str(out)]) == 0
    return {path.name: path.read_bytes() for path in sorted(out.iterdir())}


def _without(table: bytes, *, column: str | None = None, event: str | None = None) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(table), dtype=str, keep_default_na=False)
    if column is not None:
        frame = frame.drop(columns=column)
    if event is not None:
        frame = frame[frame["kind"] != event]
    return frame.reset_index(drop=True)


def test_the_same_seed_gives_the_same_export_byte_for_byte(protocol_file, tmp_path, capsys):
    """Two databases, one seed: every data file is identical byte for byte. What the bots do not control is
    stated, not hidden: ``study.csv``'s ``exported_at`` (when ``export`` ran) and the ``register`` event of
    ``events.csv`` (when ``init`` ran). Case order used to come from ``secrets`` and the clock from the wall
    clock, so this failed before."""
    protocol = str(protocol_file("within"))
    first = _simulate_and_export(tmp_path, protocol, "a", seed=7)
    second = _simulate_and_export(tmp_path, protocol, "b", seed=7)
    other = _simulate_and_export(tmp_path, protocol, "c", seed=8)
    capsys.readouterr()
    assert first.keys() == second.keys()
    for name in first.keys() - {"study.csv", "events.csv"}:
        assert first[name] == second[name], name
    pd.testing.assert_frame_equal(
        _without(first["study.csv"], column="exported_at"),
        _without(second["study.csv"], column="exported_at"),
    )
    pd.testing.assert_frame_equal(
        _without(first["events.csv"], event="register"), _without(second["events.csv"], event="register")
    )
    assert first["responses.csv"] != other["responses.csv"]
    responses = pd.read_csv(io.BytesIO(first["responses.csv"]))
    orders = responses[responses["case_id"].notna()].groupby("participant_id")["case_id"].agg(tuple)
    assert orders.nunique() > 1  # case orders are seeded, not fixed


def _engine(protocol: str, url: str):
    from db.session import Database
    from study.engine import StudyEngine
    from study.protocol.loading import load_protocol
    from study.registry import register

    db = Database(url)
    register(db, load_protocol(protocol))
    return StudyEngine.open(db, protocol)


def _trial_answers(engine) -> pd.DataFrame:
    from study.export import export_frames

    rows = export_frames(engine.db)["responses"]
    return rows[rows["item"] == "trust_1"].assign(value=lambda f: f["value"].astype(float))


def test_case_effects_are_planted_per_case_and_shared_by_every_bot(protocol_file, tmp_path):
    """Case intercepts and case × condition effects belong to the case: the per-case means of many bots
    follow the planted values (known truth), the same for every bot of the run."""
    engine = _engine(str(protocol_file("within")), f"sqlite:///{tmp_path}/cases.db")
    spec = CaseEffects(case_sd=1.5, case_condition_sd=1.5, participant_condition_sd=0.0)
    policy = Policy(kind="effect", case_effects={"trust": spec}, case_seed=3, noise_sd=0.3, person_sd=0.3)
    simulate(engine, 40, seed=5, policy=policy, progress=False)
    trial = _trial_answers(engine)
    means = trial.pivot_table(index="case_id", columns="condition", values="value", aggfunc="mean")
    cases = list(means.index)
    visual = next(c for c in means.columns if c != engine.protocol.baseline)
    intercepts = [spec.case_sd * standard_normal(f"3:trust:{case}") for case in cases]
    slopes = [spec.case_condition_sd * standard_normal(f"3:trust:{case}:{visual}") for case in cases]
    baseline = means[engine.protocol.baseline].to_numpy()
    assert np.corrcoef(baseline, intercepts)[0, 1] > 0.9
    difference = means[visual].to_numpy() - baseline
    assert np.corrcoef(difference, slopes)[0, 1] > 0.9


def test_participant_slopes_spread_the_condition_effect(protocol_file, tmp_path):
    """Random slopes: each bot's visual − baseline difference spreads with ``participant_condition_sd``."""
    spreads = {}
    for sd in (0.0, 2.0):
        engine = _engine(str(protocol_file("within")), f"sqlite:///{tmp_path}/slopes{sd}.db")
        policy = Policy(
            kind="effect", case_effects={"trust": CaseEffects(participant_condition_sd=sd)}, noise_sd=0.3
        )
        simulate(engine, 30, seed=1, policy=policy, progress=False)
        rows = _trial_answers(engine)
        wide = rows.pivot_table(index="participant_id", columns="condition", values="value", aggfunc="mean")
        spreads[sd] = float((wide.iloc[:, 1] - wide.iloc[:, 0]).std())
    assert spreads[2.0] > 3 * spreads[0.0]


def test_case_flags_are_checked(protocol_file, tmp_path):
    url = f"sqlite:///{tmp_path}/flags.db"
    protocol = str(protocol_file("within"))
    assert main(["init", "--db", url, "--protocol", protocol]) == 0
    with pytest.raises(SystemExit, match="unknown construct 'trusst'"):
        main(["simulate", "--db", url, "--protocol", protocol, "--case-sd", "trusst=1"])
    with pytest.raises(SystemExit, match="case_sd must be ≥ 0"):
        main(["simulate", "--db", url, "--protocol", protocol, "--case-sd", "-1"])
    with pytest.raises(SystemExit, match=r"\[CONSTRUCT=\]SD"):
        main(["simulate", "--db", url, "--protocol", protocol, "--case-sd", "trust=x"])


def test_the_power_bots_draw_the_cases_anew_per_world(protocol_file):
    """Cases are a sample too: each case world of the power simulation has its own draw of the cases'
    effects, so power is not conditional on one set of photos; without case effects there is one world."""
    from study.botpower import EngineBotGenerator
    from study.protocol.loading import load_protocol

    loaded = load_protocol(protocol_file("within"))
    assert EngineBotGenerator(loaded, "trust").case_worlds == 1
    policy = Policy(case_effects={"trust": CaseEffects(case_sd=2.0)}, noise_sd=0.3, person_sd=0.3)
    generator = EngineBotGenerator(loaded, "trust", policy=policy, pool_size=24, case_worlds=2)
    assert EngineBotGenerator(loaded, "trust", policy=policy).case_worlds == 20
    generator.prepare([0.0], 6)
    means = []
    for world in (0, 1):
        rows = generator.population(0.0, world)
        rows = rows[rows["item"] == "trust_1"].assign(value=lambda f: f["value"].astype(float))
        means.append(rows.groupby("case_id")["value"].mean())
    assert (means[0] - means[1]).abs().max() > 1.0  # SD 2 per case: two worlds' photos differ
    assert generator.describe()["case_worlds"] == 2
    assert generator.describe()["case_effects"]["case_sd"] == 2.0
    rng = np.random.default_rng(0)
    assert generator(6, 0.0, rng)["participant_id"].nunique() == 6
    generator.close()
