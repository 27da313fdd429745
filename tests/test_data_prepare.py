"""``skingen data prepare`` on small fabricated files in each dataset's real column layout (torch-free, fast).

Images are 32×32 noise PNGs: unrelated noise images are ~32 pHash bits apart, an exact copy 0, a resized copy
≤ 2, so the near-duplicate threshold (4) separates them clearly.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from formats.taxonomy import Taxonomy
from skingen.cli import main
from skingen.data_prepare.pipeline import near_duplicate_filter
from skingen.dataset import load_dataset
from skingen.diagnosis.reading import read_diagnosis
from skingen.errors import SkinGenError
from skingen.prompts import DEFAULT_TEMPLATES, PromptBuilder

REPO = Path(__file__).resolve().parents[1]
F17K_HEADER = (
    "md5hash", "fitzpatrick_scale", "fitzpatrick_centaur", "label", "nine_partition_label",
    "three_partition_label", "qc", "url", "url_alphanum",
)  # fmt: skip


def noise(path: Path, seed: int, size: int = 32) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def resized_copy(source: Path, path: Path) -> Path:
    with Image.open(source) as image:
        image.resize((48, 48), Image.Resampling.BICUBIC).save(path)
    return path


def write_csv(path: Path, header: tuple[str, ...] | list[str], rows: list[tuple | list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def f17k_row(md5: str, scale: int, label: str, qc: str = "") -> tuple:
    return (md5, scale, scale, label, "inflammatory", "non-neoplastic", qc, f"http://x/{md5}", md5)


@pytest.fixture
def fitzpatrick17k(tmp_path: Path) -> tuple[Path, Path]:
    images = tmp_path / "f17k-images"
    for i, md5 in enumerate(["a1", "a2", "a3", "a4", "a5", "a8", "a9", "a10", "a11", "a12"]):
        noise(images / f"{md5}.jpg", seed=i)  # JPEG, as Fitzpatrick17k's images are
    (images / "a6.jpg").write_bytes((images / "a1.jpg").read_bytes())  # an exact duplicate of a1
    resized_copy(images / "a2.jpg", images / "a7.jpg")  # a resized near-duplicate of a2
    rows = [
        f17k_row("a1", 3, "psoriasis"),
        f17k_row("a2", 4, "psoriasis"),
        f17k_row("a3", -1, "psoriasis"),
        f17k_row("a4", 1, "basal cell carcinoma"),
        f17k_row("a5", 2, "basal cell carcinoma"),
        f17k_row("a6", 5, "eczema"),
        f17k_row("a7", 6, "eczema"),
        f17k_row("a8", 2, "lichen planus"),
        f17k_row("a9", 3, "lichen planus"),
        f17k_row("a10", 3, "psoriasis", qc="3 Wrongly labelled"),
        f17k_row("a11", 5, "eczema", qc="1 Diagnostic"),
        f17k_row("a12", 6, "eczema"),
    ]
    return write_csv(tmp_path / "fitzpatrick17k.csv", F17K_HEADER, rows), images


def prepare(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    rc = main(["data", "prepare", *(str(a) for a in args)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def read_metadata(out: Path) -> list[dict[str, str]]:
    with (out / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- Fitzpatrick17k: mapping, unmapped, qc, dedupe, split, captions, data card -------------------------


def test_fitzpatrick17k_end_to_end(
    tmp_path: Path, fitzpatrick17k: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src, images = fitzpatrick17k
    out = tmp_path / "DATA"
    rc, stdout, stderr = prepare(capsys, src, "--format", "fitzpatrick17k", "--images", images, "--out", out)
    assert rc == 0, stderr
    summary = json.loads(stdout)
    assert summary == {
        "data": str(out), "images": 7, "duplicates_removed": 2, "unmapped_images": 2, "excluded": 1,
    }  # fmt: skip
    assert "unmapped labels, left out: 'lichen planus' ×2" in stderr

    data = load_dataset(out)
    by_md5 = {Path(e.file).stem: e for e in data.examples}
    assert sorted(by_md5) == [
        "a1",
        "a11",
        "a12",
        "a2",
        "a3",
        "a4",
        "a5",
    ]  # a6/a7 duplicates, a10 qc, a8/a9 unmapped
    assert {k: (e.condition, e.skin_tone) for k, e in by_md5.items()} == {
        "a1": ("psoriasis", "III"), "a2": ("psoriasis", "IV"), "a3": ("psoriasis", ""),
        "a4": ("basal_cell_carcinoma", "I"), "a5": ("basal_cell_carcinoma", "II"),
        "a11": ("eczema", "V"), "a12": ("eczema", "VI"),
    }  # fmt: skip
    assert {e.skin_tone_source for e in data.examples} == {"dataset", ""}
    assert by_md5["a3"].skin_tone_source == ""
    assert {(e.source, e.licence) for e in data.examples} == {("fitzpatrick17k", "CC BY-NC-SA 3.0")}
    assert (out / by_md5["a1"].file).read_bytes() == (images / "a1.jpg").read_bytes()  # copied as is
    assert by_md5["a1"].attribution == "http://x/a1" and by_md5["a1"].patient == ""  # url; no patient ids

    # Every condition × group is in train
    strata: dict[tuple[str, str | None], set[str]] = {}
    for e in data.examples:
        strata.setdefault((e.condition, e.skin_tone_group), set()).add(e.split)
    assert all("train" in splits for splits in strata.values())

    # Captions come from the generation templates, with what the dataset says (unknown tone, no body site)
    prompts = PromptBuilder.load(Taxonomy.load())
    for e in data.examples:
        assert e.caption == prompts.caption(e.condition, skin_tone=e.skin_tone, body_site=None)
    assert "Fitzpatrick type IV skin" in by_md5["a2"].caption and "on the skin" in by_md5["a2"].caption

    card = json.loads((out / "datacard.json").read_text())
    assert card["format"] == "skingen-datacard" and card["images"] == 7
    assert card["unmapped"] == {"lichen planus": 2}
    assert card["excluded"] == {"qc '3 Wrongly labelled'": 1}
    assert [Path(d["file"]).name for d in card["duplicates"]] == ["a6.jpg", "a7.jpg"]
    assert [Path(d["duplicate_of"]).name for d in card["duplicates"]] == ["a1.jpg", "a2.jpg"]
    assert card["counts"]["psoriasis"]["III-IV"] == {"train": 2, "validation": 0}  # round(2 · 0.2) = 0
    assert card["counts"]["psoriasis"]["unknown"] == {"train": 1, "validation": 0}
    assert card["command"].startswith("skingen data prepare ") and "--seed 0" in card["command"]
    md = (out / "datacard.md").read_text()
    assert "| psoriasis | 0 | 2 | 0 | 1 | 3 | 3 | 0 |" in md
    assert "| lichen planus | 2 |" in md and "CC BY-NC-SA 3.0" in md and "Near-duplicates removed" in md
    html = (out / "datacard.html").read_text()
    assert "psoriasis" in html and "<script src=" not in html  # plotly.js inlined: no network at view time


def test_split_is_deterministic_by_seed_and_stratified(
    tmp_path: Path, fitzpatrick17k: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src, images = fitzpatrick17k
    common = ("--format", "fitzpatrick17k", "--images", images, "--validation-fraction", "0.5")
    for name in ("one", "two"):
        assert prepare(capsys, src, *common, "--out", tmp_path / name)[0] == 0
    one, two = read_metadata(tmp_path / "one"), read_metadata(tmp_path / "two")
    assert one == two
    splits: dict[tuple[str, str], list[str]] = {}
    for row in one:
        splits.setdefault((row["condition"], row["skin_tone"] and row["skin_tone"][:1]), []).append(
            row["split"]
        )
    # each stratum of two images: one train, one validation
    data = load_dataset(tmp_path / "one")
    pairs = 0
    for condition, group in {(e.condition, e.skin_tone_group) for e in data.examples}:
        in_stratum = [
            e.split for e in data.examples if (e.condition, e.skin_tone_group) == (condition, group)
        ]
        if len(in_stratum) == 2:
            pairs += 1
            assert sorted(in_stratum) == ["train", "validation"]
    assert pairs > 0  # the check above ran


def test_phash_distance_is_the_threshold(
    tmp_path: Path, fitzpatrick17k: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src, images = fitzpatrick17k
    args = (src, "--format", "fitzpatrick17k", "--images", images)
    rc, stdout, _ = prepare(capsys, *args, "--out", tmp_path / "all", "--phash-distance", "64")
    assert rc == 0 and json.loads(stdout)["images"] == 1  # every 64-bit hash is within 64 bits of the first
    rc, _, err = prepare(capsys, *args, "--out", tmp_path / "bad", "--phash-distance", "65")
    assert_failed_cleanly(rc, err, tmp_path / "bad", "--phash-distance must be 0–64")


def test_near_duplicate_filter_keeps_the_first_and_compares_with_kept_images_only() -> None:
    # 0b11 is 1 bit from the dropped 0b1 but 2 from the kept 0: kept
    assert near_duplicate_filter([0, 0b1, 0xFF, 0b11, 0xFE], 1) == [None, 0, None, None, 2]
    assert near_duplicate_filter([0, 0], 0) == [None, 0]


# --- DDI ------------------------------------------------------------------------------------------------


def test_ddi_groups_and_hyphenated_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "ddi"
    for i in range(1, 6):
        noise(images / f"{i:06d}.png", seed=100 + i)
    rows = [
        (0, 1, "000001.png", 12, "True", "melanoma"),
        (1, 2, "000002.png", 56, "False", "seborrheic-keratosis"),
        (2, 3, "000003.png", 34, "False", "melanoma-in-situ"),  # mentions melanoma: still unmapped
        (3, 4, "000004.png", 56, "False", "verruca-vulgaris"),
        (4, 5, "000005.png", 12, "False", "eczema-spongiotic-dermatitis"),
    ]
    src = write_csv(
        tmp_path / "ddi_metadata.csv", ["", "DDI_ID", "DDI_file", "skin_tone", "malignant", "disease"], rows
    )
    out = tmp_path / "DATA"
    rc, _, stderr = prepare(capsys, src, "--format", "ddi", "--images", images, "--out", out)
    assert rc == 0, stderr
    data = load_dataset(out)
    assert [(e.condition, e.skin_tone, e.skin_tone_source) for e in data.examples] == [
        ("melanoma", "I-II", "dataset"), ("seborrheic_keratosis", "V-VI", "dataset"), ("wart", "V-VI", "dataset"),
    ]  # fmt: skip
    assert "Fitzpatrick type V-VI skin" in data.examples[1].caption
    card = json.loads((out / "datacard.json").read_text())
    assert card["unmapped"] == {"melanoma-in-situ": 1, "eczema-spongiotic-dermatitis": 1}
    assert card["source"] == "ddi" and "DDI" in card["licence"]


# --- SCIN -----------------------------------------------------------------------------------------------

SCIN_CASE_HEADER = (
    "case_id", "source", "release", "year", "age_group", "sex_at_birth", "fitzpatrick_skin_type",
    "body_parts_arm", "body_parts_leg", "image_1_path", "image_1_shot_type", "image_2_path", "image_2_shot_type",
    "image_3_path", "image_3_shot_type",
)  # fmt: skip
SCIN_LABEL_HEADER = (
    "case_id", "dermatologist_gradable_for_skin_condition_1", "dermatologist_skin_condition_on_label_name",
    "dermatologist_skin_condition_confidence", "weighted_skin_condition_label",
    "dermatologist_gradable_for_fitzpatrick_skin_type_1", "dermatologist_gradable_for_fitzpatrick_skin_type_2",
    "dermatologist_gradable_for_fitzpatrick_skin_type_3", "dermatologist_fitzpatrick_skin_type_label_1",
    "dermatologist_fitzpatrick_skin_type_label_2", "dermatologist_fitzpatrick_skin_type_label_3",
    "gradable_for_monk_skin_tone_india", "gradable_for_monk_skin_tone_us", "monk_skin_tone_label_india",
    "monk_skin_tone_label_us",
)  # fmt: skip
BIG_ID = "-1000600354148496558"  # a float64 would round it


def scin_case(case_id: str, fst: str, images: list[str], arm: str = "") -> tuple:
    paths = [*(f"dataset/images/{i}.png" for i in images), "", ""][:3]
    return (case_id, "USER", "SCIN", 2023, "AGE_30_TO_39", "FEMALE", fst, arm, "",
            paths[0], "CLOSE_UP", paths[1], "AT_AN_ANGLE" if paths[1] else "", paths[2], "")  # fmt: skip


def scin_label(
    case_id: str, names: str, weighted: str, derm: tuple[str, str, str], gradable=("YES",) * 3
) -> tuple:
    return (case_id, "DEFAULT_YES", names, "[4, 3]", weighted, *gradable, *derm, "True", "True", "3.0", "")


@pytest.fixture
def scin(tmp_path: Path) -> tuple[Path, Path]:
    src, images = tmp_path / "scin", tmp_path / "scin-images"
    src.mkdir()
    for i, name in enumerate(["c1a", "c1b", "c1c", "c2a", "c2b", "c3a", "c4a", "c5a", "c6a"]):
        noise(
            images / "dataset" / "images" / f"{name}.png" if name == "c1a" else images / f"{name}.png",
            seed=200 + i,
        )
    cases = [
        scin_case(BIG_ID, "FST3", ["c1a", "c1b", "c1c"], arm="YES"),
        scin_case("2", "FST2", ["c2a", "c2b"]),
        scin_case("3", "FST5", ["c3a"]),
        scin_case("4", "NONE_SELECTED", ["c4a"]),
        scin_case("5", "NONE_SELECTED", ["c5a"]),  # no labels row
        scin_case("6", "FST1", ["c6a"]),
    ]
    labels = [
        scin_label(
            BIG_ID, "['Eczema', 'Psoriasis']", "{'Eczema': 0.69, 'Psoriasis': 0.08}", ("FST4", "FST4", "FST5")
        ),
        scin_label("2", "['Psoriasis', 'Psoriasis', 'Eczema']", "{}", ("", "", "")),
        scin_label("3", "['CD - Contact dermatitis']", "{'CD - Contact dermatitis': 1.0}", ("FST5", "", "")),
        scin_label(
            "4", "['Eczema']", "{'Eczema': 1.0}", ("FST4", "FST3", "FST6"), gradable=("YES", "YES", "NO")
        ),
        scin_label("6", "['Psoriasis']", "{'Psoriasis': 1.0}", ("", "", "")),
    ]
    write_csv(src / "scin_cases.csv", SCIN_CASE_HEADER, cases)
    write_csv(src / "scin_labels.csv", SCIN_LABEL_HEADER, labels)
    return src, images


def test_scin_labels_skin_tones_and_split_by_case(
    tmp_path: Path, scin: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src, images = scin
    out = tmp_path / "DATA"
    rc, _, stderr = prepare(
        capsys, src, "--format", "scin", "--images", images, "--out", out, "--validation-fraction", "0.5"
    )
    assert rc == 0, stderr
    data = load_dataset(out)
    by_image = {Path(e.file).stem: e for e in data.examples}
    assert {k: (e.condition, e.skin_tone, e.skin_tone_source) for k, e in by_image.items()} == {
        # the weighted label's argmax; dermatologists' majority (IV, IV, V) over self-report (III)
        "c1a": ("eczema", "IV", "dermatologist"), "c1b": ("eczema", "IV", "dermatologist"),
        "c1c": ("eczema", "IV", "dermatologist"),
        # no weights: the most frequent dermatologist name; no dermatologist tone: self-report
        "c2a": ("psoriasis", "II", "self_reported"), "c2b": ("psoriasis", "II", "self_reported"),
        # FST6 not gradable, IV/III tie → the lower median
        "c4a": ("eczema", "III", "dermatologist"),
        "c6a": ("psoriasis", "I", "self_reported"),
    }  # fmt: skip
    assert "on the arm" in by_image["c1a"].caption and "on the skin" in by_image["c2a"].caption
    # the case id is each image's patient (what retrieval keeps apart from a case of that patient)
    assert {k: e.patient for k, e in by_image.items() if k.startswith(("c1", "c2"))} == {
        "c1a": BIG_ID, "c1b": BIG_ID, "c1c": BIG_ID, "c2a": "2", "c2b": "2",
    }  # fmt: skip
    # a case's images share a split; the two-case strata are split one and one
    assert len({by_image[k].split for k in ("c1a", "c1b", "c1c")}) == 1
    assert len({by_image[k].split for k in ("c2a", "c2b")}) == 1
    assert {by_image["c1a"].split, by_image["c4a"].split} == {"train", "validation"}
    assert {by_image["c2a"].split, by_image["c6a"].split} == {"train", "validation"}
    card = json.loads((out / "datacard.json").read_text())
    assert card["unmapped"] == {"CD - Contact dermatitis": 1, "(no label)": 1}
    assert card["licence"] == "SCIN Data Use License"
    assert card["skin_tone_sources"] == {"dermatologist": 4, "self_reported": 3}


def test_scin_accepts_the_documented_label_column_spelling(
    tmp_path: Path, scin: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src, images = scin
    text = (src / "scin_labels.csv").read_text().replace("condition_on_label_name", "condition_label_name")
    (src / "scin_labels.csv").write_text(text)
    rc, _, stderr = prepare(capsys, src, "--format", "scin", "--images", images, "--out", tmp_path / "d")
    assert rc == 0, stderr


# --- folder ---------------------------------------------------------------------------------------------


def test_folder_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "photos"
    noise(src / "psoriasis" / "x.png", 1)
    noise(src / "psoriasis" / "y.png", 2)
    noise(src / "Atopic Dermatitis" / "x.png", 3)  # a synonym of eczema, same file name as psoriasis/x.png
    noise(src / "lichen planus" / "z.png", 4)
    (src / "psoriasis" / "notes.txt").write_text("not an image")
    out = tmp_path / "DATA"
    rc, _, stderr = prepare(
        capsys, src, "--format", "folder", "--out", out, "--licence", "CC BY 4.0 (own photos)"
    )
    assert rc == 0, stderr
    data = load_dataset(out)
    assert sorted((e.file, e.condition) for e in data.examples) == [
        ("images/eczema/x.png", "eczema"), ("images/psoriasis/x.png", "psoriasis"),
        ("images/psoriasis/y.png", "psoriasis"),
    ]  # fmt: skip
    assert {(e.source, e.licence, e.skin_tone) for e in data.examples} == {
        ("folder", "CC BY 4.0 (own photos)", "")
    }
    assert json.loads((out / "datacard.json").read_text())["unmapped"] == {"lichen planus": 1}


# --- bad input: one message naming file, column and row; exit 1; nothing written -----------------------


def assert_failed_cleanly(rc: int, stderr: str, out: Path, *expected: str) -> None:
    assert rc == 1
    assert stderr.count("skingen: error:") == 1
    message = stderr[stderr.index("skingen: error:") :]
    for text in expected:
        assert text in message, message
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no staging left


def test_missing_column_names_file_and_column(
    tmp_path: Path, fitzpatrick17k: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src, images = fitzpatrick17k
    rows = list(csv.reader(src.open()))
    write_csv(src, [c if c != "label" else "diagnosis" for c in rows[0]], rows[1:])
    out = tmp_path / "DATA"
    rc, _, err = prepare(capsys, src, "--format", "fitzpatrick17k", "--images", images, "--out", out)
    assert_failed_cleanly(rc, err, out, str(src), "missing column(s) label")


def test_missing_image_names_row_and_column(
    tmp_path: Path, fitzpatrick17k: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src, images = fitzpatrick17k
    (images / "a4.jpg").unlink()
    out = tmp_path / "DATA"
    rc, _, err = prepare(capsys, src, "--format", "fitzpatrick17k", "--images", images, "--out", out)
    assert_failed_cleanly(rc, err, out, f"{src}, line 5, column md5hash", "image not found", "a4.jpg")


def test_unreadable_image_names_it_and_its_row(
    tmp_path: Path, fitzpatrick17k: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src, images = fitzpatrick17k
    (images / "a2.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "DATA"
    rc, _, err = prepare(capsys, src, "--format", "fitzpatrick17k", "--images", images, "--out", out)
    assert_failed_cleanly(rc, err, out, f"{src}, line 3, column md5hash", "not a readable image", "a2.jpg")


def test_unknown_format_is_one_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "DATA"
    rc, _, err = prepare(capsys, tmp_path, "--format", "isic", "--images", tmp_path, "--out", out)
    assert_failed_cleanly(rc, err, out, "--format 'isic' is not known", "fitzpatrick17k, ddi, scin, folder")


def test_bad_values_name_file_row_and_column(
    tmp_path: Path,
    fitzpatrick17k: tuple[Path, Path],
    scin: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "DATA"
    src, images = fitzpatrick17k
    rows = list(csv.reader(src.open()))
    rows[4][1] = "7"
    write_csv(src, rows[0], rows[1:])
    rc, _, err = prepare(capsys, src, "--format", "fitzpatrick17k", "--images", images, "--out", out)
    assert_failed_cleanly(rc, err, out, f"{src}, line 5, column fitzpatrick_scale", "'7'")

    scin_src, scin_images = scin
    labels = scin_src / "scin_labels.csv"
    labels.write_text(labels.read_text().replace("{'Eczema': 1.0}", "{'Eczema': "))
    rc, _, err = prepare(capsys, scin_src, "--format", "scin", "--images", scin_images, "--out", out)
    assert_failed_cleanly(
        rc, err, out, f"{labels}, line 5, column weighted_skin_condition_label", "Python-literal"
    )

    ddi = write_csv(tmp_path / "ddi.csv", ["", "DDI_ID", "DDI_file", "skin_tone", "malignant", "disease"],
                    [(0, 1, "000001.png", 78, "False", "melanoma")])  # fmt: skip
    rc, _, err = prepare(capsys, ddi, "--format", "ddi", "--images", tmp_path, "--out", out)
    assert_failed_cleanly(rc, err, out, f"{ddi}, line 2, column skin_tone", "'78'")


def test_existing_output_is_kept_without_overwrite(
    tmp_path: Path, fitzpatrick17k: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src, images = fitzpatrick17k
    out = tmp_path / "DATA"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = (src, "--format", "fitzpatrick17k", "--images", images, "--out", out)
    rc, _, err = prepare(capsys, *args)
    assert rc == 1 and "--overwrite" in err and (out / "keep.txt").read_text() == "mine"
    rc, _, err = prepare(capsys, *args, "--overwrite")
    assert rc == 0, err
    assert not (out / "keep.txt").exists() and (out / "metadata.csv").is_file()


# --- the parts underneath -------------------------------------------------------------------------------


def test_taxonomy_lookup_is_exact_never_a_near_class() -> None:
    taxonomy = Taxonomy.load()
    assert taxonomy.lookup("Basal-Cell_Carcinoma") == "basal_cell_carcinoma"
    assert (
        taxonomy.lookup("verruca-vulgaris") == "wart" and taxonomy.lookup("Herpes Zoster") == "herpes_zoster"
    )
    assert taxonomy.lookup("melanoma-in-situ") is None  # reading it as a model's answer says melanoma
    assert read_diagnosis("melanoma-in-situ", taxonomy).condition == "melanoma"
    assert taxonomy.lookup("psoriasys") is None  # no misspellings either
    assert taxonomy.lookup("") is None


def test_captions_need_the_group_and_unknown_descriptions(tmp_path: Path) -> None:
    taxonomy = Taxonomy.load()
    packaged = PromptBuilder.load(taxonomy)
    assert packaged.caption("acne", skin_tone="", body_site="face").startswith(
        "clinical dermatology photograph of acne on the face"
    )
    assert packaged.build("acne").prompt == packaged.build("acne", skin_tone="III", body_site="face").prompt
    templates = yaml.safe_load(DEFAULT_TEMPLATES.read_text(encoding="utf-8"))
    del templates["skin_tone_groups"], templates["unknown_skin_tone"]
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(templates), encoding="utf-8")
    bare = PromptBuilder.load(taxonomy, tmp_path / "t.yaml")  # templates written before groups existed
    caption = packaged.caption("acne", skin_tone="V", body_site=None)
    assert bare.caption("acne", skin_tone="V", body_site=None) == caption
    with pytest.raises(SkinGenError, match=r"no skin_tone_groups\.V-VI"):
        bare.caption("acne", skin_tone="V-VI", body_site=None)
    with pytest.raises(SkinGenError, match="no unknown_skin_tone"):
        bare.caption("acne", skin_tone="", body_site=None)


def test_data_prepare_stays_torch_free(tmp_path: Path) -> None:
    noise(tmp_path / "photos" / "acne" / "a.png", 1)
    code = (
        "import sys; from skingen.cli import main; rc = main(sys.argv[1:]); "
        "print('HEAVY=' + ','.join(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)); "
        "sys.exit(rc)"
    )
    args = [
        "data",
        "prepare",
        str(tmp_path / "photos"),
        "--format",
        "folder",
        "--out",
        str(tmp_path / "DATA"),
    ]
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, timeout=120,
        env={"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("HEAVY=")


def test_no_mapped_label_is_one_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noise(tmp_path / "photos" / "lichen planus" / "a.png", 1)
    out = tmp_path / "DATA"
    rc, _, err = prepare(capsys, tmp_path / "photos", "--format", "folder", "--out", out)
    assert_failed_cleanly(rc, err, out, "no image has a condition of the taxonomy", "'lichen planus' ×1")


def test_metadata_without_the_optional_column_still_loads(tmp_path: Path) -> None:
    noise(tmp_path / "images" / "a.png", 1)
    write_csv(
        tmp_path / "metadata.csv",
        ["file", "condition", "skin_tone", "caption", "source", "licence", "split"],
        [("images/a.png", "acne", "V", "a photo", "own", "CC0", "train")],
    )
    (example,) = load_dataset(tmp_path).examples
    assert example.skin_tone_source == "" and example.skin_tone_group == "V-VI"
