"""Retrieved real references (``skingen bundle build --retrieve``): ranking, exclusions, licences, bad inputs.

The ranking is checked on features whose order is known (each image's feature is a unit vector at an angle
the test chooses, so cosine distance grows with the angle), then once end to end with a tiny CLIP, whose
distances the test computes itself with torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from formats.bundle import BundleError, Case, load_bundle
from formats.taxonomy import Taxonomy
from skingen import cli
from skingen.bundle.builder import BundleBuilder, BundleSettings, read_cases
from skingen.bundle.retrieval import Candidates, Query, ReferenceRetriever, RetrievalSettings, rank_neighbours
from skingen.dataset import Example, load_dataset
from skingen.prompts import PromptBuilder
from skingen.sources import file_sha256
from tests.shares import build_in_threads, bundle_files, manifest_without_time
from tests.skingen_fixtures import (
    F17K,
    IMAGES,
    SCIN,
    FakeGenerator,
    TinyModels,
    unit,
    write_cases,
    write_retrieval_set,
)

CASES = [  # c1's photo is photo(0) (write_cases seeds photos by row)
    {"case_id": "c1", "file": "c1.png", "ground_truth": "psoriasis", "ai_condition": "psoriasis",
     "skin_tone": "II", "patient": "pt1"},
    {"case_id": "c2", "file": "c2.png", "ground_truth": "psoriasis", "ai_condition": "eczema",
     "skin_tone": "", "patient": ""},  # a deliberately wrong AI: eczema
    {"case_id": "c3", "file": "c3.png", "ground_truth": "psoriasis", "ai_condition": "psoriasis",
     "skin_tone": "V", "patient": ""},
    {"case_id": "c4", "file": "c4.png", "ground_truth": "acne", "ai_condition": "unknown",
     "skin_tone": "", "patient": ""},
]  # fmt: skip


class AngleEmbedder:
    """Features chosen by the test: every case photo at 0°, each set image at its IMAGES angle."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, paths: Sequence[Path], *, desc: str = "") -> np.ndarray:
        self.calls.append([p.stem for p in paths])
        return np.array([unit(IMAGES[p.stem][3] if p.stem in IMAGES else 0) for p in paths])


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, dict[str, Case], AngleEmbedder]:
    cases_dir = write_cases(tmp_path / "cases", CASES)
    data = write_retrieval_set(tmp_path / "DATA")
    embedder = AngleEmbedder()
    out = build(tmp_path, cases_dir, data, embedder, "out")
    return out, {c.case_id: c for c in load_bundle(out).manifest.cases}, embedder


def retrieving_builder(data: Path, embedder: object, generator: FakeGenerator) -> BundleBuilder:
    taxonomy = Taxonomy.load()
    retriever = ReferenceRetriever(
        load_dataset(data), embedder, RetrievalSettings(data=data, features=Path("angles"), k=3)
    )
    return BundleBuilder(
        taxonomy, PromptBuilder.load(taxonomy), generator, None, BundleSettings("b", k=1), retriever=retriever
    )


def build(tmp_path: Path, cases_dir: Path, data: Path, embedder: object, name: str) -> Path:
    builder = retrieving_builder(data, embedder, FakeGenerator())
    return builder(read_cases(cases_dir, Taxonomy.load()), tmp_path / name, progress=False)


def names(case: Case) -> list[str]:
    return [Path(r.dataset_file).stem for r in case.retrieved]


# --- ranking on given features -----------------------------------------------------------------------------


def candidates(rows: list[tuple[float, str, str, int]]) -> Candidates:
    """(angle, skin tone, patient, pHash) per candidate, all psoriasis."""
    examples = tuple(
        Example(f"images/{i}.png", "psoriasis", tone, "", "s", "l", "train", patient=patient)
        for i, (_, tone, patient, _) in enumerate(rows)
    )
    features = np.array([unit(angle) for angle, *_ in rows])
    return Candidates(examples, features, np.array([h for *_, h in rows], dtype=np.uint64))


def test_ranking_is_by_cosine_distance_with_ties_in_set_order() -> None:
    pool = candidates([(50, "", "", 0xF0), (10, "", "", 0xF00), (30, "", "", 0xF000), (10, "", "", 0xF0000)])
    ranked = rank_neighbours(Query(np.array(unit(0)), phash=0), pool, k=3, phash_distance=2)
    assert [n.example.file for n in ranked] == ["images/1.png", "images/3.png", "images/2.png"]
    assert [n.rank for n in ranked] == [1, 2, 3]
    assert ranked[0].distance == pytest.approx(1 - math.cos(math.radians(10)))
    assert ranked[2].distance == pytest.approx(1 - math.cos(math.radians(30)))
    assert all(n.same_skin_tone_group is None for n in ranked)  # the query's tone is unknown


def test_ranking_excludes_near_duplicates_and_the_patient_and_prefers_the_skin_tone_group() -> None:
    pool = candidates([
        (0, "II", "", 0b111),  # 1 bit from the query's hash: a near-duplicate
        (5, "II", "pt1", 0xFF00),  # the query's patient
        (20, "V", "", 0xFF0000),
        (40, "I", "", 0xFF000000),  # same group (I-II) as the query's II, though farther
        (60, "", "", 0xFF00000000),  # unknown tone: another group
    ])  # fmt: skip
    query = Query(np.array(unit(0)), phash=0b110, skin_tone_group="I-II", patient="pt1")
    ranked = rank_neighbours(query, pool, k=5, phash_distance=1)
    assert [n.example.file for n in ranked] == ["images/3.png", "images/2.png", "images/4.png"]
    assert [n.same_skin_tone_group for n in ranked] == [True, False, False]
    # a stricter threshold lets the 1-bit near-duplicate through; without patients, the patient's image too
    loose = rank_neighbours(Query(np.array(unit(0)), phash=0b110), pool, k=2, phash_distance=0)
    assert [n.example.file for n in loose] == ["images/0.png", "images/1.png"]


# --- the bundle ------------------------------------------------------------------------------------------


def test_each_case_gets_the_nearest_real_images_of_the_diagnosed_condition(built) -> None:
    _, cases, embedder = built
    # c1 (II, patient pt1): not its own photo, its resized copy nor its patient's image; I-II images first
    assert names(cases["c1"]) == ["p_near", "p_mid", "p_other_tone"]
    assert [r.same_skin_tone_group for r in cases["c1"].retrieved] == [True, True, False]
    assert [r.rank for r in cases["c1"].retrieved] == [1, 2, 3]
    assert cases["c1"].retrieved[0].distance == pytest.approx(1 - math.cos(math.radians(10)), abs=1e-6)
    # c2: the AI says eczema (wrongly) → real eczema images, as its generated references are eczema too
    assert names(cases["c2"]) == ["e_one", "e_two"]  # the set has only two eczema images (k = 3)
    assert (
        {r.skin_condition for r in cases["c2"].retrieved}
        == {"eczema"}
        == {r.skin_condition for r in cases["c2"].references}
    )
    assert [r.same_skin_tone_group for r in cases["c2"].retrieved] == [None, None]  # c2's tone is unknown
    # c3 (V): the V-VI image first; c3's photo is not in the set, so its duplicates of c1 are fair game
    assert names(cases["c3"]) == ["p_dark", "p_copy", "p_resized"]
    assert cases["c4"].retrieved == ()  # unknown diagnosis: nothing to show
    # each condition's images are embedded once, whichever case asks first
    assert [call for call in embedder.calls if len(call) > 1] == [
        ["p_near", "p_other_tone", "p_mid", "p_dark", "p_patient", "p_copy", "p_resized"],
        ["e_one", "e_two"],
    ]


def test_retrieved_images_are_copied_with_their_licence_and_caption(built, tmp_path: Path) -> None:
    out, cases, _ = built
    bundle = load_bundle(out)
    first, _, tone = cases["c1"].retrieved
    assert first.image == "references/c1/retrieved_0.png" and bundle.path(first.image).is_file()
    assert (first.source, first.licence, first.attribution) == (*SCIN, "")
    assert first.caption == "Real example of psoriasis — not the patient. Photo: SCIN (SCIN Data Use License)"
    assert (tone.source, tone.licence, tone.attribution) == (*F17K, "http://atlas/p_other_tone")
    assert tone.caption.endswith("Photo: fitzpatrick17k (CC BY-NC-SA 3.0), http://atlas/p_other_tone")
    assert cases["c2"].retrieved[0].caption.startswith("Real example of eczema — not the patient.")
    source = tmp_path / "DATA" / first.dataset_file
    assert first.sha256 == file_sha256(source) and first.skin_tone == "II"
    retrieval = bundle.manifest.retrieval
    assert retrieval is not None and (retrieval.k, retrieval.phash_distance, retrieval.metric) == (
        3,
        4,
        "cosine",
    )
    assert retrieval.data_sha256 == load_dataset(tmp_path / "DATA").content_hash
    assert retrieval.same_patient_excluded and retrieval.features == "angles"


def test_a_bundle_without_retrieval_has_no_retrieval_fields(tmp_path: Path) -> None:
    taxonomy = Taxonomy.load()
    cases = read_cases(write_cases(tmp_path / "cases", CASES), taxonomy)
    builder = BundleBuilder(
        taxonomy, PromptBuilder.load(taxonomy), FakeGenerator(), None, BundleSettings("b", k=1)
    )
    manifest = load_bundle(builder(cases, tmp_path / "out", progress=False)).manifest
    assert manifest.retrieval is None and all(c.retrieved == () for c in manifest.cases)
    text = (tmp_path / "out" / "manifest.json").read_text()
    assert '"retrieved": []' in text and '"retrieval": null' in text


def test_two_processes_retrieve_what_one_does(built, tmp_path: Path) -> None:
    one, _, _ = built
    cases = read_cases(tmp_path / "cases", Taxonomy.load())
    embedders = [AngleEmbedder(), AngleEmbedder()]
    errors = build_in_threads(
        cases,
        tmp_path / "two",
        [FakeGenerator(), FakeGenerator()],
        lambda generator: retrieving_builder(tmp_path / "DATA", embedders.pop(), generator),
    )
    assert errors == [None, None]
    assert bundle_files(tmp_path / "two") == bundle_files(one)
    assert manifest_without_time(tmp_path / "two") == manifest_without_time(one)
    assert len(load_bundle(tmp_path / "two").manifest.case("c3").retrieved) == 3


def test_manifests_without_retrieval_fields_still_load_and_bad_entries_are_named(built) -> None:
    out, _, _ = built
    data = json.loads((out / "manifest.json").read_text())
    old = {key: value for key, value in data.items() if key != "retrieval"}
    old["cases"] = [{k: v for k, v in case.items() if k != "retrieved"} for case in data["cases"]]
    (out / "manifest.json").write_text(json.dumps(old))
    assert load_bundle(out).manifest.retrieval is None  # a bundle from before retrieval
    orphan = {**data, "retrieval": None}
    (out / "manifest.json").write_text(json.dumps(orphan))
    with pytest.raises(BundleError, match="case 'c1': retrieved images without the manifest's 'retrieval'"):
        load_bundle(out)
    data["cases"][0]["retrieved"][0]["condition"] = "eczema"
    (out / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="case 'c1': a retrieved image of 'eczema' for the AI's diagnosis"):
        load_bundle(out)
    data["cases"][0]["retrieved"][0].update(condition="psoriasis", image="references/c1/missing.png")
    (out / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(
        BundleError, match=r"cases\[0\]\.retrieved\[0\]\.image: file 'references/c1/missing.png'"
    ):
        load_bundle(out)


# --- end to end with a tiny CLIP -----------------------------------------------------------------------------


@pytest.mark.ml
def test_tiny_clip_ranks_by_its_own_cosine_distance(tiny: TinyModels, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from skingen.evaluation.features import FeatureExtractor

    cases_dir = write_cases(tmp_path / "cases", CASES[:1])
    data = write_retrieval_set(tmp_path / "DATA")
    extractor = FeatureExtractor(tiny.clip, device="cpu")
    out = build(tmp_path, cases_dir, data, extractor, "out")
    [case] = load_bundle(out).manifest.cases
    dataset = load_dataset(data)
    psoriasis = [e for e in dataset.examples if e.condition == "psoriasis"]
    allowed = [e for e in psoriasis if Path(e.file).stem not in {"p_copy", "p_resized", "p_patient"}]
    query = extractor([cases_dir / "c1.png"])
    features = extractor([dataset.path(e) for e in allowed])
    distance = 1 - torch.nn.functional.cosine_similarity(features, query).numpy()
    tone_first = sorted(
        range(len(allowed)), key=lambda i: (allowed[i].skin_tone not in {"I", "II"}, distance[i])
    )
    assert [r.dataset_file for r in case.retrieved] == [allowed[i].file for i in tone_first[:3]]
    assert [r.distance for r in case.retrieved] == pytest.approx(
        [distance[i] for i in tone_first[:3]], abs=1e-5
    )


# --- bad inputs: one message naming the file/column/row, nothing written -------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    rc = cli.main([str(a) for a in args])
    return rc, capsys.readouterr().err


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    cases_dir = write_cases(tmp_path / "cases", CASES)
    return cases_dir, write_retrieval_set(tmp_path / "DATA")


def build_args(cases_dir: Path, data: Path, out: Path) -> list[object]:
    # --sd and --features point nowhere: the inputs are refused before any model would be loaded
    return ["bundle", "build", cases_dir, "--out", out, "--sd", "no-sd-here", "--retrieve", data,
            "--features", "no-model-here"]  # fmt: skip


def test_a_missing_metadata_column_is_named_and_nothing_written(inputs, tmp_path, capsys) -> None:
    cases_dir, data = inputs
    lines = (data / "metadata.csv").read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("licence")
    (data / "metadata.csv").write_text(
        "\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != drop) for line in lines) + "\n"
    )
    rc, err = run_cli(capsys, *build_args(cases_dir, data, tmp_path / "out"))
    assert rc == 1
    assert f"{data / 'metadata.csv'}: missing column(s) licence" in err and err.count("error") == 1
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["DATA", "cases"]


def test_a_missing_image_names_its_row_and_nothing_written(inputs, tmp_path, capsys) -> None:
    cases_dir, data = inputs
    (data / "images/eczema/e_two.png").unlink()
    rc, err = run_cli(capsys, *build_args(cases_dir, data, tmp_path / "out"))
    assert rc == 1
    assert f"{data / 'metadata.csv'}, line 10: image 'images/eczema/e_two.png' does not exist" in err
    assert not (tmp_path / "out").exists()


def test_retrieval_flags_need_each_other(inputs, tmp_path, capsys) -> None:
    cases_dir, data = inputs
    args = build_args(cases_dir, data, tmp_path / "out")
    rc, err = run_cli(capsys, *args[:-2])
    assert rc == 1 and "--retrieve needs --features PATH" in err
    rc, err = run_cli(capsys, *args[:7], "--features", "x")
    assert rc == 1 and "only used with --retrieve DATA" in err
    rc, err = run_cli(capsys, *args, "--retrieve-k", "0")
    assert rc == 1 and "--retrieve-k: must be ≥ 1, got 0" in err
    assert not (tmp_path / "out").exists()
