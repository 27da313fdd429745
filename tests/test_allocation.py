"""Allocation tables: balanced in every block and stratum, reproducible from the seed, Latin-square rotation."""

from __future__ import annotations

from collections import Counter

import pytest

from study.allocation import allocation_table, arms, case_sets, trial_order
from study.protocol.loading import load_protocol


@pytest.mark.parametrize("design", ["between", "within"])
def test_every_block_is_balanced_in_every_stratum(protocol_file, design):
    protocol = load_protocol(protocol_file(design)).protocol
    arm_ids = {a.id for a in arms(protocol)}
    for stratum in protocol.strata:
        table = allocation_table(protocol, stratum, 500)
        assert [s.position for s in table] == list(range(len(table)))
        blocks: dict[int, list[str]] = {}
        for slot in table:
            blocks.setdefault(slot.block, []).append(slot.arm)
        for block in blocks.values():
            assert len(block) in protocol.randomization.block_sizes
            counts = Counter(block)
            assert set(counts) == arm_ids and len(set(counts.values())) == 1, counts
        sizes = {len(b) for b in blocks.values()}
        assert sizes == set(protocol.randomization.block_sizes)  # sizes really are mixed


def test_reproducible_from_seed_and_different_per_stratum_and_seed(protocol_file):
    protocol = load_protocol(protocol_file()).protocol
    first = allocation_table(protocol, "Layperson", 200)
    assert first == allocation_table(protocol, "Layperson", 200)
    assert (
        allocation_table(protocol, "Layperson", 50)
        == first[: len(allocation_table(protocol, "Layperson", 50))]
    )
    assert [s.arm for s in first] != [s.arm for s in allocation_table(protocol, "Clinician", 200)]
    reseeded = load_protocol(protocol_file(randomization__seed=7)).protocol
    assert [s.arm for s in first] != [s.arm for s in allocation_table(reseeded, "Layperson", 200)]


def test_within_sequences_rotate_case_sets_by_latin_square(protocol_file):
    protocol = load_protocol(protocol_file("within")).protocol
    sequences = arms(protocol)
    assert len(sequences) == 4
    triples = Counter(
        (case_set, period, condition)
        for arm in sequences
        for period, (condition, case_set) in enumerate(arm.periods)
    )
    # every case set appears under every condition in every period exactly once per full block
    assert len(triples) == 2 * 2 * 2 and set(triples.values()) == {1}
    for arm in sequences:
        assert sorted(c for c, _ in arm.periods) == ["baseline_text", "skingen_visual"]
        assert sorted(s for _, s in arm.periods) == [0, 1]


def test_case_sets_split_wrong_ai_cases_evenly(protocol_file):
    loaded = load_protocol(protocol_file("within"))
    sets = case_sets(loaded)
    assert sorted(c for s in sets for c in s) == sorted(loaded.case_ids())
    wrong = [sum(not loaded.bundle.manifest.case(c).ai_correct for c in s) for s in sets]
    assert wrong == [1, 1]
    assert len(case_sets(load_protocol(protocol_file()))) == 1


def test_trial_order_depends_on_seed_and_period():
    cases = [f"c{i}" for i in range(10)]
    assert trial_order(cases, order="fixed", seed=1, period=1) == cases
    a = trial_order(cases, order="random", seed=1, period=1)
    assert sorted(a) == cases and a != cases
    assert a == trial_order(cases, order="random", seed=1, period=1)
    assert a != trial_order(cases, order="random", seed=2, period=1)
