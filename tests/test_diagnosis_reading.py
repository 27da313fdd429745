"""Reading a model's free-text diagnosis onto the taxonomy (skingen.diagnosis.reading): negation, hedging,
ranked differentials, specific names kept apart from broad ones. Torch-free."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from formats.taxonomy import DEFAULT_TAXONOMY, UNKNOWN, Taxonomy, TaxonomyError
from skingen.diagnosis.reading import Status, read_diagnosis

SENTENCES = Path(__file__).parent / "data" / "diagnosis_sentences.yaml"


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load()


def test_written_diagnoses_are_all_read_as_labelled(taxonomy: Taxonomy) -> None:
    rows = yaml.safe_load(SENTENCES.read_text(encoding="utf-8"))
    assert len(rows) >= 60
    for row in rows:
        assert row["note"] and (row["expected"] in taxonomy or row["expected"] == UNKNOWN), row
    mismatches = []
    for row in rows:
        reading = read_diagnosis(row["sentence"], taxonomy)
        if reading.condition != row["expected"]:
            mismatches.append(
                f"{row['sentence']!r}: expected {row['expected']} ({row['note']})\n{reading.explain()}"
            )
    accuracy = 1 - len(mismatches) / len(rows)
    print(f"diagnosis sentences: {len(rows) - len(mismatches)}/{len(rows)} read as labelled ({accuracy:.1%})")
    assert not mismatches, "\n\n".join(mismatches)


def test_the_reading_says_which_span_decided_and_which_were_ruled_out(taxonomy: Taxonomy) -> None:
    text = "I cannot rule out melanoma, but it is probably a seborrheic keratosis. No sign of BCC."
    reading = read_diagnosis(text, taxonomy)
    assert reading.condition == "seborrheic_keratosis"
    assert reading.ranked == ("seborrheic_keratosis", "melanoma")
    by_name = {m.name: m for m in reading.mentions}
    assert text[by_name["melanoma"].start : by_name["melanoma"].end] == "melanoma"
    assert (by_name["melanoma"].status, by_name["melanoma"].cue) == (Status.CONSIDERED, "cannot rule out")
    assert by_name["seborrheic keratosis"].status is Status.LIKELY
    assert (by_name["bcc"].status, by_name["bcc"].cue) == (Status.NEGATED, "no sign of")
    assert reading.pick is by_name["seborrheic keratosis"]
    explained = reading.explain()
    assert "'BCC' [82:85] → basal_cell_carcinoma: negated (cue 'no sign of')" in explained
    assert explained.endswith("→ seborrheic_keratosis")


def test_a_pick_outside_the_taxonomy_is_unknown_and_leads_the_ranking(taxonomy: Taxonomy) -> None:
    reading = read_diagnosis("Diagnosis: seborrheic dermatitis\nDifferential: psoriasis, eczema", taxonomy)
    assert reading.condition == UNKNOWN
    assert reading.ranked == (UNKNOWN, "psoriasis", "eczema")
    assert reading.mentions[0].condition is None and reading.mentions[0].status is Status.MOST_LIKELY
    # a condition outside the taxonomy further down the ranking is left out of it (the app lists the rest)
    assert read_diagnosis("Most likely eczema; differential: scabies, tinea", taxonomy).ranked == (
        "eczema",
        "tinea",
    )


def test_nothing_named_or_everything_ruled_out_is_unknown(taxonomy: Taxonomy) -> None:
    for text in ("", "Healthy skin.", "Not melanoma, no sign of psoriasis."):
        reading = read_diagnosis(text, taxonomy)
        assert reading.condition == UNKNOWN and reading.ranked == () and reading.pick is None


def _custom(tmp_path: Path, extra: list[dict], other: list[str] | None) -> Taxonomy:
    data = yaml.safe_load(DEFAULT_TAXONOMY.read_text(encoding="utf-8"))
    data["conditions"] += extra
    if other is None:
        del data["other_conditions"]
    else:
        data["other_conditions"] = other
    path = tmp_path / "taxonomy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return Taxonomy.load(path)


def test_a_taxonomy_that_has_the_specific_name_reads_it(tmp_path: Path) -> None:
    seb = {
        "id": "seborrheic_dermatitis",
        "display_name": "Seborrheic dermatitis",
        "synonyms": ["seborrheic dermatitis"],
    }
    taxonomy = _custom(tmp_path, [seb], other=None)  # no list of its own: the packaged one, less its names
    assert (
        "seborrheic dermatitis" not in taxonomy.other_conditions
        and "spitz nevus" in taxonomy.other_conditions
    )
    assert read_diagnosis("Seborrheic dermatitis of the scalp", taxonomy).condition == "seborrheic_dermatitis"
    assert read_diagnosis("Perioral dermatitis", taxonomy).condition == UNKNOWN
    # with an empty list of its own, a specific name falls back to the broad one inside it: the list matters
    assert read_diagnosis("Perioral dermatitis", _custom(tmp_path, [], other=[])).condition == "eczema"


def test_a_malformed_other_conditions_list_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    data = yaml.safe_load(DEFAULT_TAXONOMY.read_text(encoding="utf-8"))
    data["other_conditions"] = "scabies"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(TaxonomyError, match=r"bad\.yaml.*other_conditions"):
        Taxonomy.load(path)


def test_researcher_written_names_resolve_exactly(taxonomy: Taxonomy) -> None:
    assert taxonomy.resolve("Plaque-Psoriasis", "cases.csv, line 2") == "psoriasis"
    assert taxonomy.resolve("unknown", "x") == UNKNOWN
    # the taxonomy's own TaxonomyError (a FormatError since the package cut), with the file and line as before
    with pytest.raises(TaxonomyError, match=r"cases\.csv, line 3: condition 'seborrheic dermatitis'"):
        taxonomy.resolve("seborrheic dermatitis", "cases.csv, line 3")
