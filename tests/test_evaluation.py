"""``skingen evaluate``: each metric against an independent computation written here, the per-group breakdown,
the closed loop with a tiny CLIP, metrics.json's schema, and bad inputs (one message, nothing written)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from skingen.cli import main
from tests.image_sets import CONDITIONS, TYPES, tinted_image, write_sets
from tests.skingen_fixtures import tiny_models

pytestmark = pytest.mark.ml
torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

from skingen.evaluation import metrics  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory)


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    return write_sets(tmp_path_factory.mktemp("evaluation"))


def _run(*argv: object) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def evaluated(sets, models, tmp_path_factory) -> dict:
    data, generated = sets
    out = tmp_path_factory.mktemp("eval-out") / "report"
    code = _run("evaluate", "--real", data, "--generated", generated, "--features", models.clip, "--out", out,
                "--diagnoser", f"clip:{models.clip}", "--jackknife-groups", 10, "--equal-n-draws", 5,
                "--bootstrap", 200, "--device", "cpu")  # fmt: skip
    assert code == 0
    assert (out / "report.html").is_file()
    return json.loads((out / "metrics.json").read_text())


# --- the metrics against independent computations -----------------------------------------------------------


def _features(n: int, d: int = 16, shift: float = 0.0, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d)) + shift)


def _prdc_brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """Naeem et al. 2020 on full distance matrices, as the authors' prdc package computes them."""
    distance = lambda a, b: np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))  # noqa: E731
    real_radii = np.sort(distance(real, real), axis=1)[:, k]
    fake_radii = np.sort(distance(fake, fake), axis=1)[:, k]
    d = distance(real, fake)
    return {
        "precision": (d < real_radii[:, None]).any(axis=0).mean(),
        "recall": (d < fake_radii[None, :]).any(axis=1).mean(),
        "density": (d < real_radii[:, None]).sum(axis=0).mean() / k,
        "coverage": (d.min(axis=1) < real_radii).mean(),
    }


def _prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    result = metrics.manifold(real, fake, k)
    return {
        name: float(getattr(result, name).mean()) for name in ("precision", "recall", "density", "coverage")
    }


@pytest.mark.parametrize("block_entries", [1 << 23, 97])  # one block, and many small ones
def test_manifold_metrics_on_point_clouds_with_known_overlap(monkeypatch, block_entries) -> None:
    monkeypatch.setattr(metrics, "_BLOCK_ENTRIES", block_entries)
    real = _features(200, seed=5)
    same = _prdc(real, real.clone())
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.25)
    assert _prdc(real, real + 100.0) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # half the fakes are real images, half lie far away: exactly half the fakes are inside the real manifold
    half = torch.cat([real[:100], _features(100, shift=100.0, seed=6)])
    result = _prdc(real, half)
    assert result["precision"] == 0.5
    assert result["coverage"] >= 0.5
    # same distribution, separate draws: high but below 1
    other = _prdc(real, _features(200, seed=7))
    assert 0.6 < other["precision"] < 1 and 0.6 < other["recall"] < 1
    # against the brute force (jittered: an exact copy ties a distance with a k-NN radius, decided by rounding)
    near = torch.cat([real[:100] + 0.01 * _features(100, seed=9), half[100:]])
    for fake in (near, _features(150, shift=0.7, seed=8)):
        assert _prdc(real, fake) == pytest.approx(_prdc_brute_force(real.numpy(), fake.numpy(), 5), abs=1e-12)


def test_diversity_is_the_mean_pairwise_distance_within_a_condition() -> None:
    x = _features(9, seed=9)
    groups = ["a"] * 5 + ["b"] * 3 + ["c"]
    per_image = metrics.diversity(x, groups)
    a = x.numpy()[:5]
    pairwise = np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1))
    assert per_image[:5].mean() == pytest.approx(pairwise.sum() / (5 * 4))
    assert np.isnan(per_image[8])  # alone in its condition


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible() -> None:
    values = np.random.default_rng(0).normal(size=300)
    low, high = metrics.bootstrap_ci(values, replicates=500, rng=np.random.default_rng(1))
    assert low < values.mean() < high
    assert (low, high) == metrics.bootstrap_ci(values, replicates=500, rng=np.random.default_rng(1))
    assert metrics.bootstrap_ci(values[:1], replicates=500, rng=np.random.default_rng(1)) is None


def test_knn_metrics_beyond_the_cap_use_a_seeded_subsample() -> None:
    from skingen.evaluation.evaluator import Embedded, EvaluationSettings, metrics_from_features
    from skingen.evaluation.inputs import EvalImage

    real, fake = _features(40, seed=1), _features(40, seed=2, shift=0.3)
    images = [EvalImage(Path(f"{i}.png"), CONDITIONS[i % 3], TYPES[i % 6]) for i in range(40)]

    def run(cap: int, seed: int = 0) -> dict:
        settings = EvaluationSettings(bootstrap=0, equal_n_draws=0, knn_max_samples=cap, seed=seed)
        return metrics_from_features(Embedded(real, fake), images, images, settings)

    full, uncapped, capped = run(40), run(0), run(12)
    assert full["precision"] == uncapped["precision"] and full["knn_samples"] == {"real": 40, "generated": 40}
    assert capped["knn_samples"] == {"real": 12, "generated": 12} and capped["by_skin_tone"]["I-II"][
        "knn_samples"
    ] == {"real": 12, "generated": 12}  # each group is capped on its own (14 images here)
    assert any(w["code"] == "knn_subsample" and w["cap"] == 12 for w in capped["warnings"])
    assert capped["fd_features"] == full["fd_features"]  # the distribution metrics keep every image
    # the same 12 images each time (the documented draw: its own stream per subset and side), others with
    # another seed
    assert run(12)["precision"] == capped["precision"] and run(12, seed=5)["density"] != capped["density"]

    def drawn(side: str) -> np.ndarray:
        rng = np.random.default_rng([0, zlib.crc32(f"knn:all:{side}".encode())])
        return np.sort(rng.choice(40, 12, replace=False))

    expected = metrics.manifold(real[drawn("real")], fake[drawn("generated")], 5)
    assert capped["precision"] == pytest.approx(expected.precision.mean())
    assert capped["coverage"] == pytest.approx(expected.coverage.mean())


def test_groups_of_different_sizes_from_one_distribution_show_no_gap() -> None:
    """Identical distributions, skin-tone groups of 400, 120 and 30 generated images (d = 16): the plug-in FD
    ranks the smallest group far worst (its bias is O(d/n)); FD∞, FD at equal n and KD do not, the gap
    sentences say the difference may be chance, and metrics.json warns that the groups differ in size."""
    from skingen.evaluation.evaluator import Embedded, EvaluationSettings, metrics_from_features
    from skingen.evaluation.inputs import EvalImage

    sizes = {"II": 400, "IV": 120, "VI": 30}
    tones = [tone for tone, n in sizes.items() for _ in range(n)]
    real_tones = [tone for tone in sizes for _ in range(300)]
    real, fake = _features(len(real_tones), seed=21), _features(len(tones), seed=22)
    generated = [EvalImage(Path(f"g{i}.png"), "acne", tone) for i, tone in enumerate(tones)]
    labelled = [EvalImage(Path(f"r{i}.png"), "acne", tone) for i, tone in enumerate(real_tones)]
    settings = EvaluationSettings(bootstrap=100, equal_n_draws=20)
    result = metrics_from_features(Embedded(real, fake), labelled, generated, settings)
    groups = result["by_skin_tone"]
    assert groups["V-VI"]["fd_features"] > 3 * groups["I-II"]["fd_features"]  # the raw FD's spurious gap
    for key in ("fd_features_inf", "fd_features_equal_n", "kd_features"):
        gap = result["gaps"][key]
        assert gap["distinguishable"] is False, gap["text"]
        assert "may be chance" in gap["text"]
    assert {g["fd_features_equal_n"]["n_generated"] for g in groups.values()} == {30}
    unequal = [w for w in result["warnings"] if w["code"] == "unequal_group_sizes"]
    assert unequal[0]["sizes"] == {"I-II": 400, "III-IV": 120, "V-VI": 30}


# --- the command end to end -----------------------------------------------------------------------------------

HEADLINE = ("fd_clip", "fd_clip_inf", "kd_clip", "precision", "recall", "density", "coverage", "clip_score",
            "diversity", "closed_loop_accuracy")  # fmt: skip


def test_metrics_json_schema(evaluated) -> None:
    assert evaluated["schema_version"] == 2
    assert evaluated["feature_spaces"] == ["clip"]  # the tiny CLIP's model_type: no bare "fid" for it
    assert evaluated["distances"] == {
        "clip": {
            "fd": "fd_clip",
            "fd_inf": "fd_clip_inf",
            "fd_equal_n": "fd_clip_equal_n",
            "kd": "kd_clip",
            "dim": 32,
        }
    }
    assert "fid" not in evaluated and "kid" not in evaluated  # fmt: skip
    assert (evaluated["n_real"], evaluated["n_generated"], evaluated["feature_dim"]) == (36, 36, 32)
    for key in HEADLINE:
        assert isinstance(evaluated[key], float), key
    assert list(evaluated["by_skin_tone"]) == ["I-II", "III-IV", "V-VI"]
    for group in evaluated["by_skin_tone"].values():
        assert (group["n_real"], group["n_generated"]) == (12, 12)
        for key in HEADLINE:
            assert key in group, key
    assert list(evaluated["by_skin_type"]) == list(TYPES)  # 6 per type on each side: > k
    assert evaluated["inputs"]["real"] == {"path": evaluated["inputs"]["real"]["path"], "kind": "data",
                                           "labelled": True}  # fmt: skip
    assert evaluated["settings"]["k"] == 5
    for group in evaluated["by_skin_tone"].values():  # every group at the smallest group's sizes (all 12)
        equal_n = group["fd_clip_equal_n"]
        assert (equal_n["n_real"], equal_n["n_generated"], equal_n["draws"]) == (12, 12, 5)
        assert equal_n["low"] <= equal_n["mean"] <= equal_n["high"]
    fidelity = evaluated["skin_tone_fidelity"]  # every generated image asked for a tone and was measured
    assert fidelity["n"] == 36 and {e["n"] for e in fidelity["by_requested_group"].values()} == {12}
    assert fidelity["n_measured"] == np.array(fidelity["table"]).sum() <= 36
    small = [w for w in evaluated["warnings"] if w["code"] == "small_n_for_dimension"]
    assert {w["subset"] for w in small} >= {"all", "I-II"} and small[0]["dim"] == 32  # 36 and 12 < 2 × 32


def test_intervals_hold_their_estimates_and_the_gap_compares_comparable_numbers(evaluated) -> None:
    for entry in [evaluated, *evaluated["by_skin_tone"].values()]:
        for key in ("fd_clip_inf", "kd_clip", "precision", "recall", "density", "coverage", "clip_score",
                    "diversity", "closed_loop_accuracy"):  # fmt: skip
            low, high = entry[f"{key}_ci"]
            assert low <= entry[key] <= high, key
        assert "fd_clip_ci" not in entry  # the plug-in FD has no interval
    assert "fd_clip" not in evaluated["gaps"]  # nor a gap: its bias depends on n
    gap = evaluated["gaps"]["fd_clip_inf"]
    assert {gap["best"], gap["worst"]} <= {"I-II", "III-IV", "V-VI"}
    assert gap["text"].startswith(f"FD (clip)∞ is best for Fitzpatrick {gap['best']}")
    assert gap["text"] in evaluated["summary"] and isinstance(gap["distinguishable"], bool)
    assert "subsamples of 12 real and 12 generated" in evaluated["gaps"]["fd_clip_equal_n"]["text"]


def test_closed_loop_with_a_tiny_clip(evaluated) -> None:
    loop = evaluated["closed_loop"]
    confusion = np.array(loop["confusion"])
    assert confusion.sum() == loop["n"] == 36
    intended = [label for label in loop["labels"] if label in loop["by_condition"]]
    assert sorted(intended) == sorted(CONDITIONS)
    diagonal = sum(confusion[i, loop["labels"].index(c)] for i, c in enumerate(intended))
    assert evaluated["closed_loop_accuracy"] == pytest.approx(diagonal / 36)
    assert loop["accuracy"] == evaluated["closed_loop_accuracy"]
    for i, condition in enumerate(intended):
        assert loop["by_condition"][condition]["n"] == confusion[i].sum() == 12


def test_plain_folder_and_bundle_inputs_give_global_metrics_only(sets, models, bundle_dir, tmp_path) -> None:
    data, _ = sets
    out = tmp_path / "out"
    code = _run("evaluate", "--real", data / "images", "--generated", bundle_dir, "--features", models.clip,
                "--out", out, "--bootstrap", 50, "--k", 2)  # fmt: skip
    assert code == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["inputs"]["real"]["kind"] == "folder" and result["inputs"]["generated"]["kind"] == "bundle"
    assert result["fd_clip"] is not None and result["fd_clip_inf_ci"] is not None
    assert result["closed_loop_accuracy"] is None and result["closed_loop"] is None
    for group in result["by_skin_tone"].values():
        assert group["n_real"] is None and group["fd_clip"] is None
    assert result["by_skin_type"] == {}


# --- bad inputs: one message, nothing written -----------------------------------------------------------------


def _bad(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    "case",
    ["missing", "no images", "unreadable", "one image", "not a model", "bad diagnoser", "bad k"],
)
def test_bad_inputs_give_one_message_and_write_nothing(case, sets, models, tmp_path, capsys) -> None:
    data, generated = sets
    real, gen, features, extra = data, generated, models.clip, []
    if case == "missing":
        real, expected = tmp_path / "nowhere", "--real"
    elif case == "no images":
        gen, expected = _bad(tmp_path, "empty"), "no images"
    elif case == "unreadable":
        gen = _bad(tmp_path, "broken")
        for i in range(3):
            tinted_image(i, 0).save(gen / f"{i}.png")
        (gen / "3.png").write_bytes(b"not a png")
        expected = "3.png"
    elif case == "one image":
        gen = _bad(tmp_path, "single")
        tinted_image(0, 0).save(gen / "0.png")
        expected = "at least 2"
    elif case == "not a model":
        features, expected = _bad(tmp_path, "no-model"), "not a model directory"
    elif case == "bad diagnoser":
        extra, expected = ["--diagnoser", "resnet:x"], "--diagnoser 'resnet:x': expected vlm:PATH, clip:PATH"
    else:
        extra, expected = ["--k", "0"], "--k"
    out = tmp_path / "out"
    code = _run("evaluate", "--real", real, "--generated", gen, "--features", features, "--out", out, *extra)
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("skingen: error:") == 1 and expected in err, err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
