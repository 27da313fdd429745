"""Several processes enrolling and answering at once on one SQLite file (and double submits from two threads)."""

from __future__ import annotations

import multiprocessing
import random
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from db.models import AllocationSlot, Participant, Response
from db.session import Database
from study.engine import StudyEngine
from study.simulate import Bot, Policy

pytestmark = pytest.mark.slow

PROCESSES = 4
BOTS_PER_PROCESS = 12


def run_workers(url: str, protocol: str) -> list[list[str]]:
    """Start the workers together in fresh processes; a worker that dies fails the test (no silent respawn)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        futures = [pool.submit(_worker, url, protocol, seed) for seed in range(PROCESSES)]
        return [future.result(timeout=300) for future in futures]


def _worker(url: str, protocol: str, seed: int) -> list[str]:
    """Run bots; every step is submitted twice at the same moment from two threads (double click)."""
    engine = StudyEngine.open(Database(url), protocol)
    tokens = []
    with ThreadPoolExecutor(2) as pool:
        for index in range(BOTS_PER_PROCESS):
            bot = Bot(engine, Policy(), random.Random(f"{seed}:{index}"), engine.clock())
            token = engine.consent([s.id for s in engine.protocol.consent.statements])
            position = engine.position(token)
            while not position.completed:
                answers = bot.answer(position)
                twins = [pool.submit(engine.submit, token, position.step.key, answers) for _ in range(2)]
                results = [t.result() for t in twins]
                assert results[0].index == results[1].index
                position = results[0]
            tokens.append(token)
    return tokens


@pytest.mark.parametrize("design", ["between", "within"])
def test_concurrent_processes_keep_allocation_and_answers_exact(protocol_file, make_engine, tmp_path, design):
    path = protocol_file(design)
    engine = make_engine(path)
    results = run_workers(engine.db.url, str(path))
    tokens = [t for batch in results for t in batch]
    assert len(tokens) == PROCESSES * BOTS_PER_PROCESS

    with engine.db.read() as session:
        participants = session.scalars(select(Participant)).all()
        assert len(participants) == len(tokens) and {p.status for p in participants} == {"completed"}
        slots = session.scalars(
            select(AllocationSlot).where(AllocationSlot.participant_id.is_not(None))
        ).all()
        # one slot per participant, and each slot's arm is the participant's arm
        assert len(slots) == len(participants) == len({s.participant_id for s in slots})
        arm_of = {p.id: p.arm for p in participants}
        assert all(arm_of[s.participant_id] == s.arm for s in slots)
        answers = dict(
            session.execute(
                select(Response.participant_id, func.count()).group_by(Response.participant_id)
            ).all()
        )
    # claimed slots are a gap-free prefix of each stratum's table, so every full block is exactly balanced
    by_stratum: dict[str, list[AllocationSlot]] = {}
    for slot in slots:
        by_stratum.setdefault(slot.stratum, []).append(slot)
    full_blocks = 0
    for claimed in by_stratum.values():
        assert sorted(s.position for s in claimed) == list(range(len(claimed)))
        blocks: dict[int, Counter] = {}
        for slot in claimed:
            blocks.setdefault(slot.block, Counter())[slot.arm] += 1
        for block, counts in blocks.items():
            size = next(s.block_size for s in claimed if s.block == block)
            if sum(counts.values()) == size:
                full_blocks += 1
                assert len(set(counts.values())) == 1 and len(counts) == engine.protocol.n_arms
    assert full_blocks > 0  # the balance check above ran
    # no lost or doubled answer: each participant holds exactly the answers their path asks for
    for participant in participants:
        path = engine.path(participant.arm, participant.order_seed)
        expected = sum(1 + (i.type == "diagnosis") for s in path for i in s.items if i.required)
        assert answers[participant.id] == expected
