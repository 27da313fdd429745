"""The protocol schema: shipped examples validate; every kind of bad file gets a message naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.study_command import main
from study.protocol.loading import ProtocolError, load_protocol, parse_protocol
from tests.factories import EXAMPLES


@pytest.mark.parametrize("design", ["between", "within"])
def test_examples_are_valid(protocol_file, design):
    loaded = load_protocol(protocol_file(design))
    assert loaded.protocol.design == design
    assert loaded.protocol.baseline == "baseline_text"
    assert loaded.protocol.compared == "skingen_visual"
    assert loaded.protocol.strata == ("Layperson", "Medical student", "Clinician")
    assert len(loaded.case_ids()) == 6


def problems_of(protocol_file, base: str = "between", /, **changes) -> list[str]:
    with pytest.raises(ProtocolError) as info:
        load_protocol(protocol_file(base, **changes))
    return info.value.problems


def test_scale_points_error_names_field_and_line(protocol_file):
    path = protocol_file(
        questionnaires__post_block=[
            {"id": "x1", "text": "q", "type": "likert", "construct": "trust", "scale": {"points": 7}},
            {"id": "x2", "text": "q", "type": "likert", "construct": "trust", "scale": {"points": 7}},
            {"id": "x3", "text": "q", "type": "likert", "construct": "trust", "scale": {"points": 1}},
        ]
    )
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    (problem,) = info.value.problems
    assert problem.startswith("questionnaires.post_block[2].scale.points (line ")
    assert "greater than or equal to 2" in problem
    line = int(problem.split("(line ")[1].split(")")[0])
    assert "points: 1" in path.read_text().splitlines()[line - 1]


def test_every_problem_is_reported(protocol_file):
    problems = problems_of(protocol_file, study__version=None, completion__code="", design="crossover")
    fields = {p.split(" ")[0].rstrip(":") for p in problems}
    assert {"study.version", "completion.code", "design"} <= fields


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"baseline": "nothing"}, "baseline: 'nothing' is not one of the conditions"),
        ({"randomization__block_sizes": [3]}, "3 is not a multiple of the 2 arms"),
        ({"randomization__stratify_by": "age"}, "randomization.stratify_by: 'age' must be"),
        ({"cases__include": ["c01", "zz"]}, "cases.include[1]: case 'zz' is not in the bundle"),
        ({"cases__bundle": "/nonexistent/bundle"}, "cases.bundle: /nonexistent/bundle"),
    ],
)
def test_cross_field_errors(protocol_file, changes, expected):
    assert any(expected in p for p in problems_of(protocol_file, **changes)), problems_of(
        protocol_file, **changes
    )


def test_within_block_sizes_must_fit_four_sequences(protocol_file):
    problems = problems_of(protocol_file, "within", randomization__block_sizes=[6])
    assert any("6 is not a multiple of the 4 sequences" in p for p in problems)


def test_item_type_rules():
    base = (EXAMPLES / "between.yaml").read_text()
    bad = base.replace(
        "      construct: satisfaction\n",
        "      construct: satisfaction\n      reverse: true\n      attention_check: {expected: 9}\n",
    )
    with pytest.raises(ProtocolError) as info:
        parse_protocol(bad)
    assert any("attention_check.expected 9 is not a valid answer (1..7)" in p for p in info.value.problems)


def test_unknown_fields_then_cross_checks():
    """Field errors come first; cross-field checks (duplicate ids) run once the fields are valid."""
    base = (EXAMPLES / "between.yaml").read_text()
    duplicate = base.replace("id: trust_2", "id: trust_1")
    renamed = duplicate.replace("dropout_after_minutes: 60", "dropout_after: 60")
    line = renamed.splitlines().index("dropout_after: 60") + 1
    with pytest.raises(ProtocolError) as info:
        parse_protocol(renamed)
    assert info.value.problems == [f"dropout_after (line {line}): Extra inputs are not permitted"]
    with pytest.raises(ProtocolError) as info:
        parse_protocol(duplicate)
    assert "item id 'trust_1' is used twice" in "\n".join(info.value.problems)


def test_not_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(ProtocolError, match="not valid YAML"):
        parse_protocol("study: [unclosed")
    with pytest.raises(ProtocolError, match="must be a mapping"):
        parse_protocol("- a\n- b\n")
    with pytest.raises(ProtocolError, match="cannot read the file"):
        load_protocol(tmp_path / "missing.yaml")


def test_case_image_paths_cannot_leave_the_bundle(protocol_file, bundle_dir, tmp_path):
    escaped = tmp_path / "escaped"
    escaped.mkdir()
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest["cases"][0]["image"] = "../outside.png"
    (escaped / "manifest.json").write_text(json.dumps(manifest))
    problems = problems_of(protocol_file, cases__bundle=str(escaped))
    assert any("cases[0].image" in p and "must not leave the bundle directory" in p for p in problems)


def test_symlink_escape_is_caught(protocol_file, bundle_dir, tmp_path):
    copy = tmp_path / "linked"
    copy.mkdir()
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "secret.png").write_bytes(b"x")
    (copy / "cases").mkdir()
    for case in manifest["cases"]:
        (copy / case["image"]).symlink_to(tmp_path / "secret.png")
    problems = problems_of(protocol_file, cases__bundle=str(copy))
    assert any("resolves outside the bundle directory" in p for p in problems)


def test_cli_validate(protocol_file, capsys):
    good = protocol_file()
    assert main(["validate", str(good)]) == 0
    assert "valid — study 'skingen_demo'" in capsys.readouterr().out
    bad = protocol_file(randomization__block_sizes=[5])
    assert main(["validate", str(bad), str(good)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: invalid protocol" in err and "randomization" in err


def test_shipped_example_files_parse():
    for path in Path(EXAMPLES).glob("*.yaml"):
        parse_protocol(path.read_text(), str(path))


def test_attention_check_answer_must_be_labelled():
    """An instruction like 'select Somewhat agree' needs that label on the scale, or nobody can comply."""
    base = (EXAMPLES / "between.yaml").read_text()
    unlabelled = base.replace("          5: {en: Somewhat agree, de: Stimme eher zu}\n", "")
    assert unlabelled != base
    with pytest.raises(ProtocolError) as info:
        parse_protocol(unlabelled)
    assert any(
        p.startswith("questionnaires.post_block[4]") and "expected 5 has no anchor label" in p
        for p in info.value.problems
    )
