"""k conditions in the protocol: reference kinds, validation naming the field, Williams sequences, allocation."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest
import yaml

from study.allocation import allocation_table, arms
from study.codebook import codebook
from study.crossover import williams_orders
from study.protocol.loading import ProtocolError, load_protocol, parse_protocol
from study.references import shown_references
from tests.factories import example_protocol, make_bundle, multi_arm_protocol, write_protocol


@pytest.fixture(scope="module")
def retrieval_bundle(tmp_path_factory):
    """The test bundle with one retrieved real reference per case (as ``--retrieve`` makes)."""
    return make_bundle(tmp_path_factory.mktemp("bundle") / "bundle", retrieved=1)


def _write(tmp_path, data, bundle):
    return write_protocol(tmp_path, data, bundle)


def _names(problems: list[str], field: str, words: str) -> bool:
    """Some problem names ``field`` (as ``field (line n): …``, or inside a top-level cross-check) and says ``words``."""
    return any(
        words in p and (p.startswith(f"{field} (line") or p.startswith(f"{field}:") or f": {field}: " in p)
        for p in problems
    )


def _problems(data, tmp_path, bundle) -> list[str]:
    with pytest.raises(ProtocolError) as info:
        load_protocol(_write(tmp_path, data, bundle))
    return info.value.problems


# --- reference kinds ------------------------------------------------------------------------------------------
def test_reference_kinds_and_the_boolean_form_of_older_protocols():
    data = example_protocol("between")
    data["conditions"][0]["references"] = False  # the 1.x form keeps loading
    data["conditions"][1]["references"] = True
    old = parse_protocol(yaml.safe_dump(data))
    assert [c.references for c in old.conditions] == [(), ("generated",)]
    data = multi_arm_protocol("between", 4)
    protocol = parse_protocol(yaml.safe_dump(data))
    kinds = {c.id: c.references for c in protocol.conditions}
    assert kinds == {
        "baseline_text": (),
        "skingen_visual": ("generated",),
        "retrieved_photos": ("retrieved",),
        "both_images": ("generated", "retrieved"),
    }
    both = protocol.condition("both_images")
    assert both.shows("generated") and both.shows("retrieved")
    assert not protocol.condition("baseline_text").shows("generated")
    assert protocol.compared == "" and protocol.condition_ids[0] == "baseline_text"


def test_each_condition_shows_only_its_kinds_of_reference(tmp_path, retrieval_bundle):
    loaded = load_protocol(_write(tmp_path, multi_arm_protocol("between", 4), retrieval_bundle))
    case = loaded.bundle.manifest.cases[0]
    shown = {c.id: [r.kind for r in shown_references(case, c.references)] for c in loaded.protocol.conditions}
    assert shown == {
        "baseline_text": [],
        "skingen_visual": ["generated", "generated"],
        "retrieved_photos": ["retrieved"],
        "both_images": ["generated", "generated", "retrieved"],
    }


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"references": ["none", "generated"]}, "conditions[2].references", "cannot be combined"),
        ({"references": ["retrieved", "retrieved"]}, "conditions[2].references", "twice"),
        ({"references": "photos"}, "conditions[2].references[0]", "'generated' or 'retrieved'"),
        ({"references": "generated"}, "conditions[2].references", "the same as 'skingen_visual'"),
        (
            {"references": ["retrieved", "generated"]},
            "conditions[3].references",
            "the same as 'retrieved_photos'",
        ),
        ({"id": "baseline_text"}, "conditions", "unique"),
    ],
)
def test_misuse_of_a_condition_names_the_field(tmp_path, retrieval_bundle, change, field, words):
    data = multi_arm_protocol("between", 4)
    data["conditions"][2].update(change)
    problems = _problems(data, tmp_path, retrieval_bundle)
    assert _names(problems, field, words), problems


def test_condition_count_is_two_to_eight(tmp_path, retrieval_bundle):
    data = multi_arm_protocol("between", 2)
    data["conditions"] = data["conditions"][:1]
    assert any(
        p.startswith("conditions") and "at least 2" in p for p in _problems(data, tmp_path, retrieval_bundle)
    )
    data = multi_arm_protocol("between", 2)
    data["conditions"] += [
        {"id": f"extra{i}", "label": f"Extra {i}", "references": "retrieved"} for i in range(7)
    ]
    assert any(
        p.startswith("conditions") and "at most 8" in p for p in _problems(data, tmp_path, retrieval_bundle)
    )


def test_retrieved_references_need_a_bundle_that_has_them(tmp_path, bundle_dir):
    problems = _problems(multi_arm_protocol("between", 3), tmp_path, bundle_dir)
    assert len(problems) == 1 and _names(problems, "conditions[2].references", "'retrieved_photos' shows")
    assert "--retrieve" in problems[0]


def test_block_sizes_must_be_multiples_of_the_williams_sequences(tmp_path, retrieval_bundle):
    data = multi_arm_protocol("within", 3)
    data["randomization"]["block_sizes"] = [9]
    problems = _problems(data, tmp_path, retrieval_bundle)
    assert any("randomization.block_sizes: 9" in p and "18 sequences" in p for p in problems), problems


# --- the Williams design ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", range(2, 9))
def test_williams_design_is_balanced_for_first_order_carry_over(k):
    orders = williams_orders(k)
    assert len(orders) == (k if k % 2 == 0 else 2 * k)
    assert all(sorted(order) == list(range(k)) for order in orders)  # every order shows every condition once
    for period in zip(*orders, strict=True):  # each condition equally often in every period
        assert len(set(Counter(period).values())) == 1
    follows = Counter((a, b) for order in orders for a, b in pairwise(order))
    assert set(follows) == {(a, b) for a in range(k) for b in range(k) if a != b}
    assert len(set(follows.values())) == 1  # each condition follows each other one equally often


def test_two_condition_sequences_are_the_ab_ba_crossover_as_before(protocol_file):
    protocol = load_protocol(protocol_file("within")).protocol
    a, b = protocol.condition_ids
    assert [(arm.id, arm.periods) for arm in arms(protocol)] == [
        ("S1", ((a, 0), (b, 1))),
        ("S2", ((a, 1), (b, 0))),
        ("S3", ((b, 0), (a, 1))),
        ("S4", ((b, 1), (a, 0))),
    ]


@pytest.mark.parametrize("k", [3, 4])
def test_within_sequences_balance_case_sets_conditions_and_periods(tmp_path, retrieval_bundle, k):
    protocol = load_protocol(_write(tmp_path, multi_arm_protocol("within", k), retrieval_bundle)).protocol
    sequences = arms(protocol)
    assert len(sequences) == protocol.n_arms == len(williams_orders(k)) * k
    triples = Counter((s, p, c) for arm in sequences for p, (c, s) in enumerate(arm.periods))
    assert len(triples) == k**3 and len(set(triples.values())) == 1
    follows = Counter(
        (x, y) for arm in sequences for (x, _), (y, _) in pairwise(arm.periods)
    )  # the allocated sequences keep the carry-over balance
    assert len(follows) == k * (k - 1) and len(set(follows.values())) == 1


@pytest.mark.parametrize("design", ["between", "within"])
@pytest.mark.parametrize("k", [3, 4])
def test_every_block_is_balanced_in_every_stratum_for_k_arms(tmp_path, retrieval_bundle, design, k):
    protocol = load_protocol(_write(tmp_path, multi_arm_protocol(design, k), retrieval_bundle)).protocol
    arm_ids = {a.id for a in arms(protocol)}
    assert len(arm_ids) == (k if design == "between" else len(williams_orders(k)) * k)
    for stratum in protocol.strata:
        blocks: dict[int, list[str]] = {}
        for slot in allocation_table(protocol, stratum, 300):
            blocks.setdefault(slot.block, []).append(slot.arm)
        for block in blocks.values():
            assert len(block) in protocol.randomization.block_sizes and len(block) % k == 0
            counts = Counter(block)
            assert set(counts) == arm_ids and len(set(counts.values())) == 1, counts


def test_codebook_states_the_conditions_and_the_allocation(tmp_path, retrieval_bundle):
    protocol = load_protocol(_write(tmp_path, multi_arm_protocol("within", 3), retrieval_bundle)).protocol
    rows = {v.variable: v for v in codebook(protocol) if v.source == "design"}
    assert set(rows) == {"condition", "arm", "sequence"}
    assert (
        "retrieved_photos=Text and real example photos (references: retrieved)"
        in rows["condition"].value_labels
    )
    assert "baseline)" in rows["condition"].value_labels
    arm = rows["arm"]
    assert "6 condition orders of a Williams design" in arm.label and "mirror image" in arm.label
    assert "18 sequences" in arm.label and "stratified by expertise" in arm.label
    assert arm.value_labels.count("=") == 18


def test_simulate_effects_can_name_the_condition_they_shift():
    from app.study_command import _effects

    assert _effects(["trust=1", "retrieved_photos:trust=0.5"]) == (
        {"trust": 1.0},
        {"retrieved_photos": {"trust": 0.5}},
    )
    for bad in (":trust=1", "retrieved_photos:=1", "trust=x"):
        with pytest.raises(SystemExit, match="CONDITION:CONSTRUCT=POINTS"):
            _effects([bad])


def test_the_preregistration_of_four_arms_leaves_too_small_case_counts_uncomputed():
    """The mixed model's power formula needs 2k participants and 2k cases; with four arms the cases table's
    6-case column and a plan of 6 cases say so instead of failing."""
    from study import prereg

    data = multi_arm_protocol("within", 4)
    data["preregistration"] = {
        "correction": "holm",
        "sample_size": {"participants": 48, "effect": 0.5, "rationale": "pilot", "cases": 6},
    }
    sampling = prereg.sections(prereg.document(parse_protocol(yaml.safe_dump(data))))["3. Sampling plan"]
    assert "the mixed model's power is not computed for fewer than 8 participants or cases" in sampling
    row = next(line for line in sampling.splitlines() if line.startswith("| 48 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "—" and all(0 < float(c) <= 1 for c in cells[2:])  # 6 cases: —; 10, 20, 40: powers
