"""``skingen evaluate``: each metric against an independent computation written here, the per-group breakdown,
the closed loop with a tiny CLIP, metrics.json's schema, and bad inputs (one message, nothing written)."""

from __future__ import annotations

import csv
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skingen.cli import main
from skingen.provenance import ImageLabels, ProvenanceRecord, save_image
from tests.skingen_fixtures import tiny_models

pytestmark = pytest.mark.ml
torch = pytest.importorskip("torch")
scipy_linalg = pytest.importorskip("scipy.linalg")
pytest.importorskip("torchmetrics")

from skingen.evaluation import metrics  # noqa: E402

TYPES = ("I", "II", "III", "IV", "V", "VI")
CONDITIONS = ("psoriasis", "eczema", "acne")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory)


def _image(seed: int, tint: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 120, (32, 32, 3)) + np.array([tint, tint // 2, 255 - tint]) // 2
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def _record(prompt: str, seed: int) -> ProvenanceRecord:
    return ProvenanceRecord(
        model="m", model_fingerprint="f", pipeline="StableDiffusionPipeline", prompt=prompt, negative_prompt="",
        seed=seed, steps=4, guidance=7.5, scheduler="DDIMScheduler", width=32, height=32, device="cpu",
        dtype="float32", versions={},
    )  # fmt: skip


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    return write_sets(tmp_path_factory.mktemp("evaluation"))


def write_sets(root: Path) -> tuple[Path, Path]:
    """A prepared DATA folder (36 images, 6 per Fitzpatrick type) and a generated folder (36, with provenance)."""
    data, generated = root / "DATA", root / "generated"
    (data / "images").mkdir(parents=True)
    rows = []
    for i in range(36):
        tone, condition = TYPES[i % 6], CONDITIONS[i % 3]
        _image(i, 40 * (i % 6)).save(data / "images" / f"{i}.png")
        rows.append(
            {"file": f"images/{i}.png", "condition": condition, "skin_tone": tone,
             "caption": f"a photo of {condition} on type {tone} skin", "source": "test", "licence": "CC0",
             "split": "train" if i % 4 else "validation"}
        )  # fmt: skip
    with (data / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for i in range(36):
        tone, condition = TYPES[i % 6], CONDITIONS[i % 3]
        prompt = f"{condition}, skin type {tone}"
        save_image(_image(1000 + i, 45 * (i % 6)), _record(prompt, i), generated / f"{condition}_{i}.png",
                   ImageLabels(condition=condition, skin_tone=tone))  # fmt: skip
    return data, generated


def _run(*argv: object) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def evaluated(sets, models, tmp_path_factory) -> dict:
    data, generated = sets
    out = tmp_path_factory.mktemp("eval-out") / "report"
    code = _run("evaluate", "--real", data, "--generated", generated, "--features", models.clip, "--out", out,
                "--diagnoser", f"clip:{models.clip}", "--kid-subsets", 10, "--kid-subset-size", 20,
                "--bootstrap", 200, "--fid-bootstrap", 10, "--device", "cpu")  # fmt: skip
    assert code == 0
    assert (out / "report.html").is_file()
    return json.loads((out / "metrics.json").read_text())


# --- the metrics against independent computations -----------------------------------------------------------


def _features(n: int, d: int = 16, shift: float = 0.0, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d)) + shift)


def test_fid_of_a_set_with_itself_is_zero() -> None:
    x = _features(50)
    assert metrics.fid(x, x) == 0.0


def test_fid_agrees_with_numpy_scipy() -> None:
    real, fake = _features(80, seed=1), _features(70, shift=0.5, seed=2)
    r, f = real.numpy(), fake.numpy()
    covmean = scipy_linalg.sqrtm(np.cov(r, rowvar=False) @ np.cov(f, rowvar=False)).real
    expected = ((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(
        np.cov(r, rowvar=False) + np.cov(f, rowvar=False) - 2 * covmean
    )
    assert metrics.fid(real, fake) == pytest.approx(expected, rel=1e-6)


def _mmd_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with KID's polynomial kernel (x·y/d + 1)³."""
    kernel = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    m = len(x)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    return ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()


def test_kid_agrees_with_numpy_and_its_spread_over_subsets() -> None:
    real, fake = _features(60, seed=3), _features(50, shift=0.3, seed=4)
    mean, std, size = metrics.kid(real, fake, subsets=1, subset_size=1000, seed=0)
    assert size == 50  # capped at the smaller set
    torch.manual_seed(0)  # the same subsets torchmetrics draws: randperm(real), randperm(fake) per subset
    perm_r, perm_f = torch.randperm(60)[:50], torch.randperm(50)[:50]
    assert mean == pytest.approx(_mmd_unbiased(real.numpy()[perm_r], fake.numpy()[perm_f]), rel=1e-9)
    assert std == 0.0

    state = torch.get_rng_state()
    mean, std, size = metrics.kid(real, fake, subsets=8, subset_size=20, seed=5)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
    torch.manual_seed(5)
    draws = []
    for _ in range(8):
        perm_r, perm_f = torch.randperm(60)[:20], torch.randperm(50)[:20]
        draws.append(_mmd_unbiased(real.numpy()[perm_r], fake.numpy()[perm_f]))
    assert (mean, std) == pytest.approx((np.mean(draws), np.std(draws)), rel=1e-9)
    assert metrics.kid(real, fake, subsets=8, subset_size=20, seed=5)[:2] == (mean, std)  # reproducible


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
        settings = EvaluationSettings(
            bootstrap=0, fid_bootstrap=0, kid_subsets=2, knn_max_samples=cap, seed=seed
        )
        return metrics_from_features(Embedded(real, fake), images, images, settings)

    full, uncapped, capped = run(40), run(0), run(12)
    assert full["precision"] == uncapped["precision"] and full["knn_samples"] == {"real": 40, "generated": 40}
    assert capped["knn_samples"] == {"real": 12, "generated": 12} and capped["by_skin_tone"]["I-II"][
        "knn_samples"
    ] == {"real": 12, "generated": 12}  # each group is capped on its own (14 images here)
    assert any("--knn-max-samples" in w for w in capped["warnings"])
    assert capped["fid"] == full["fid"]  # the distribution metrics keep every image
    # the same 12 images each time (the documented draw: its own stream per subset and side), others with
    # another seed
    assert run(12)["precision"] == capped["precision"] and run(12, seed=5)["density"] != capped["density"]

    def drawn(side: str) -> np.ndarray:
        rng = np.random.default_rng([0, zlib.crc32(f"knn:all:{side}".encode())])
        return np.sort(rng.choice(40, 12, replace=False))

    expected = metrics.manifold(real[drawn("real")], fake[drawn("generated")], 5)
    assert capped["precision"] == pytest.approx(expected.precision.mean())
    assert capped["coverage"] == pytest.approx(expected.coverage.mean())


# --- the command end to end -----------------------------------------------------------------------------------

HEADLINE = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "clip_score", "diversity",
            "closed_loop_accuracy")  # fmt: skip


def test_metrics_json_schema(evaluated) -> None:
    assert evaluated["schema_version"] == 1
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


def test_intervals_are_ordered_and_the_gap_is_stated(evaluated) -> None:
    for entry in [evaluated, *evaluated["by_skin_tone"].values()]:
        for key in ("fid", "precision", "recall", "density", "coverage", "clip_score", "diversity",
                    "closed_loop_accuracy"):  # fmt: skip
            low, high = entry[f"{key}_ci"]
            assert low <= high, key
            if key != "fid":  # a mean lies inside its bootstrap interval; FID's plug-in bias may not
                assert low <= entry[key] <= high, key
    gap = evaluated["gaps"]["fid"]
    assert {gap["best"], gap["worst"]} <= {"I-II", "III-IV", "V-VI"}
    assert gap["text"].startswith(f"FID is best for Fitzpatrick {gap['best']}")
    assert gap["text"] in evaluated["summary"]


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
                "--out", out, "--kid-subsets", 5, "--bootstrap", 50, "--fid-bootstrap", 0, "--k", 2)  # fmt: skip
    assert code == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["inputs"]["real"]["kind"] == "folder" and result["inputs"]["generated"]["kind"] == "bundle"
    assert result["fid"] is not None and result["fid_ci"] is None
    assert result["closed_loop_accuracy"] is None and result["closed_loop"] is None
    for group in result["by_skin_tone"].values():
        assert group["n_real"] is None and group["fid"] is None
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
            _image(i, 0).save(gen / f"{i}.png")
        (gen / "3.png").write_bytes(b"not a png")
        expected = "3.png"
    elif case == "one image":
        gen = _bad(tmp_path, "single")
        _image(0, 0).save(gen / "0.png")
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
