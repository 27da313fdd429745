"""``skingen-study audit``: replay the append-only event log against the tables and explain every row.

The engine writes each change and its event in one transaction (study/engine.py), so after any crash — a
replica killed mid-submit, the database restarted — the tables must be exactly what the events say:

- each participant has one ``consent`` event and one consent record;
- an ``allocate`` event exactly when the participant has an arm, naming that arm, stratum and the one slot the
  participant holds; claimed slots fill each stratum's table from the top (so every block stays balanced);
- one ``submit`` event per answered step, never two, whose answer count is the number of rows stored for that
  step; no answer row without its submit; the step index is one past the consent plus the submits;
- completed exactly when the submits reach the end of the participant's path.

A row a crash half-wrote, or an answer stored twice, shows up as a problem naming the participant.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from db.models import AllocationSlot, ConsentRecord, Event, Participant, Response
from formats.contract import WITHDRAW_EVENT
from formats.status import COMPLETED
from study.engine import StudyEngine


@dataclass(frozen=True)
class AuditProblem:
    """One row the events don't explain. ``code`` names the rule (see the module docstring)."""

    code: str
    participant: str
    message: str

    def __str__(self) -> str:
        return f"{self.participant}: {self.message} [{self.code}]"


@dataclass
class AuditReport:
    participants: int = 0
    responses: int = 0
    events: int = 0
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(engine: StudyEngine) -> AuditReport:
    """Check every participant of ``engine``'s study against its events (read-only, one transaction)."""
    study = engine.version_id
    with engine.db.read() as session:
        participants = session.scalars(select(Participant).where(Participant.version_id == study)).all()
        events: dict[int, list[Event]] = defaultdict(list)
        for event in session.scalars(
            select(Event)
            .where(Event.version_id == study, Event.participant_id.is_not(None))
            .order_by(Event.id)
        ):
            events[event.participant_id].append(event)
        answers: dict[int, dict[str, int]] = defaultdict(dict)
        for pid, step, n in session.execute(
            select(Response.participant_id, Response.step_key, func.count())
            .join(Participant)
            .where(Participant.version_id == study)
            .group_by(Response.participant_id, Response.step_key)
        ):
            answers[pid][step] = n
        consents = set(
            session.scalars(
                select(ConsentRecord.participant_id).join(Participant).where(Participant.version_id == study)
            )
        )
        slots = session.scalars(
            select(AllocationSlot).where(AllocationSlot.version_id == study).order_by(AllocationSlot.position)
        ).all()
    report = AuditReport(len(participants), sum(sum(a.values()) for a in answers.values()))
    report.events = sum(len(e) for e in events.values())
    held = {s.participant_id: s for s in slots if s.participant_id is not None}
    for participant in participants:
        report.problems += _participant(
            engine,
            participant,
            events[participant.id],
            answers[participant.id],
            participant.id in consents,
            held.get(participant.id),
        )
    report.problems += _slots_fill_from_the_top(slots, {p.id: p.public_id for p in participants})
    return report


def _participant(
    engine: StudyEngine,
    participant: Participant,
    events: list[Event],
    answers: dict[str, int],
    consented: bool,
    slot: AllocationSlot | None,
) -> list[AuditProblem]:
    who = participant.public_id
    problems: list[AuditProblem] = []

    def problem(code: str, message: str) -> None:
        problems.append(AuditProblem(code, who, message))

    kinds = Counter(e.kind for e in events)
    withdrawn = participant.withdrawn_at is not None
    if kinds["consent"] != 1 or consented == withdrawn:  # a withdrawal removes the consent record
        problem(
            "consent",
            f"{kinds['consent']} consent event(s), consent record {'present' if consented else 'missing'}"
            + (" after withdrawal" if withdrawn else ""),
        )
    allocations = [e for e in events if e.kind == "allocate"]
    if participant.arm is None:
        if allocations or slot is not None:
            problem("allocation", "no arm, but an allocate event or a claimed slot")
    elif len(allocations) != 1:
        problem("allocation", f"arm {participant.arm!r} with {len(allocations)} allocate event(s)")
    else:
        detail = allocations[0].detail
        expected = (participant.arm, participant.stratum, participant.arm, detail.get("slot"))
        if slot is None or (detail.get("arm"), detail.get("stratum"), slot.arm, slot.position) != expected:
            problem("allocation", f"allocate event {detail} does not match the arm and the slot held")
    submits = [e for e in events if e.kind == "submit"]
    steps = Counter(e.step_key for e in submits)
    for step, n in steps.items():
        if n > 1:
            problem("submitted_twice", f"step {step} has {n} submit events")
    if withdrawn:  # the answers are gone; the one withdraw event says how many were removed
        withdrawals = [e for e in events if e.kind == WITHDRAW_EVENT]
        submitted = sum(e.detail.get("answers", 0) for e in submits)
        if len(withdrawals) != 1 or answers or withdrawals[0].detail.get("answers_removed") != submitted:
            problem("withdrawal", f"{len(withdrawals)} withdraw event(s), {sum(answers.values())} answer rows "
                    f"left, {submitted} answers submitted")  # fmt: skip
    else:
        for event in submits:
            stored, said = answers.get(event.step_key or "", 0), event.detail.get("answers")
            if stored != said:
                problem(
                    "answers", f"step {event.step_key}: {stored} answer rows, the submit event says {said}"
                )
        for step in set(answers) - set(steps):
            problem("answers", f"step {step}: {answers[step]} answer rows without a submit event")
    if participant.step_index != 1 + len(submits):
        problem("step", f"at step {participant.step_index}, but 1 + {len(submits)} submits")
    at_end = engine.participant_path(participant).current(participant.step_index).kind == "complete"
    completed = participant.completed_at is not None  # a withdrawn participant's status is 'withdrawn'
    if at_end != completed or (not withdrawn and completed != (participant.status == COMPLETED)):
        problem("completion", f"status {participant.status!r} at step {participant.step_index}")
    return problems


def _slots_fill_from_the_top(slots: list[AllocationSlot], names: dict[int, str]) -> list[AuditProblem]:
    """A free slot above a claimed one in a stratum's table would unbalance its block."""
    problems = []
    free_seen: dict[str, int] = {}
    for slot in slots:  # ordered by position
        if slot.participant_id is None:
            free_seen.setdefault(slot.stratum, slot.position)
        elif slot.stratum in free_seen:
            problems.append(
                AuditProblem(
                    "allocation_gap",
                    names.get(slot.participant_id, str(slot.participant_id)),
                    f"holds slot {slot.position} of stratum {slot.stratum!r}, slot {free_seen[slot.stratum]} is free",
                )
            )
    return problems
