"""Simulation bots (like oTree's): participants that walk the real study engine with scripted answer policies.

Bots call the same :class:`~study.engine.StudyEngine` methods the app calls, on a virtual clock (so response
times and durations look like people's), and can plant a known effect for the analysis to recover — including
effects that vary over cases (:class:`CaseEffects`), because the cases are a sample of photos too.

Everything a bot does follows from the seed: its answers, its clock (a fixed virtual calendar, not the wall
clock) and its case order (the engine takes its order seed from the bot's stream), so the same seed gives the
same export, byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

from tqdm import tqdm

from formats.contract import CONFIDENCE_SUFFIX, INITIAL_SUFFIX
from study.engine import Position, StudyEngine
from study.items.base import Item
from study.items.diagnosis import UNSURE, DiagnosisItem
from study.path import Step

BOT_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
"""Bot i of a run consents at BOT_EPOCH + i seconds: a fixed virtual calendar (so exports repeat byte for byte)
in the past (so bots that stopped midway count as dropouts)."""


@dataclass(frozen=True)
class CaseEffects:
    """How one construct's answers vary over cases and participants beyond the planted shift (Likert points).

    The answer of participant i to case j under condition c is built on
    L_i + δ_c + a_j + (b_jc + s_ic)·[c ≠ baseline] + ε:

    - ``case_sd``: SD of the case intercepts a_j (some photos are trusted more than others, in every condition);
    - ``case_condition_sd``: SD of the case × condition effects b_jc (the condition's effect differs between
      cases; the variance that makes participant-mean tests anti-conservative, Judd, Westfall & Kenny 2012);
    - ``participant_condition_sd``: SD of the participants' condition effects s_ic (random slopes).

    a_j and b_jc belong to the case, so every bot of a run shares them (drawn from ``Policy.case_seed``);
    s_ic belongs to the bot. Items without a case (post-block questions) get no case effect. The defaults (all
    0) are bots as before: every case alike, one shift for everybody.
    """

    case_sd: float = 0.0
    case_condition_sd: float = 0.0
    participant_condition_sd: float = 0.0

    def __post_init__(self) -> None:
        for name in ("case_sd", "case_condition_sd", "participant_condition_sd"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")


NO_CASE_EFFECTS = CaseEffects()


@lru_cache(maxsize=65536)
def standard_normal(key: str) -> float:
    """A N(0, 1) draw fixed by ``key``: the same case gets the same effect in every bot (and every run)."""
    return random.Random(key).gauss(0.0, 1.0)


@dataclass(frozen=True)
class AdviceTaking:
    """How a bot takes the AI's advice in a judge–advisor trial (protocol ``trial.advice: after_initial``).

    The bot first answers alone (the ground truth with probability ``Policy.own_accuracy``, else any other
    answer, "unsure" included); after the advice, a bot whose answer differs from the AI's switches to it with
    probability ``when_ai_correct`` or ``when_ai_wrong``, else keeps its own. Appropriate reliance is a high
    first and a low second probability. Defaults: a bot switches to a correct AI half the time and to a wrong
    one a quarter of the time — plain numbers, not estimates from a study.
    """

    when_ai_correct: float = 0.5
    when_ai_wrong: float = 0.25

    def __post_init__(self) -> None:
        for name in ("when_ai_correct", "when_ai_wrong"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")

    def switches(self, ai_correct: bool) -> float:
        """Probability of switching to the AI's diagnosis when the bot's own answer differs from it."""
        return self.when_ai_correct if ai_correct else self.when_ai_wrong


@dataclass(frozen=True)
class Policy:
    """How bots answer.

    ``random``: every answer uniform. ``effect``: Likert answers come from a per-participant latent level per
    construct, shifted by ``effects[construct]`` points under every condition but the baseline, plus Gaussian
    noise. ``condition_effects[condition][construct]`` sets the shift of one condition instead (k-arm studies
    with different effects per arm). ``case_effects[construct]`` adds case intercepts, case × condition and
    participant × condition variation (:class:`CaseEffects`; none by default); ``case_seed`` draws the cases'
    effects (the CLI uses ``--seed``).

    Diagnoses: with the advice shown with the case, a bot names the AI's diagnosis with probability
    ``agree_with_ai``, else any answer. In judge–advisor trials it answers alone first (right with probability
    ``own_accuracy``) and then takes the advice as ``advice`` says, or ``condition_advice[condition]`` for one
    condition (e.g. more switching to a wrong AI under one explanation: over-reliance). A manipulation check
    gets the answer expected under the bot's condition with probability ``notice_manipulation``.
    """

    kind: Literal["random", "effect"] = "random"
    effects: dict[str, float] = field(default_factory=dict)
    condition_effects: dict[str, dict[str, float]] = field(default_factory=dict)
    case_effects: dict[str, CaseEffects] = field(default_factory=dict)
    case_seed: int = 0
    noise_sd: float = 1.0
    person_sd: float = 1.0
    attention_fail_rate: float = 0.0
    dropout_rate: float = 0.0
    agree_with_ai: float = 0.7
    own_accuracy: float = 0.5
    notice_manipulation: float = 0.9
    advice: AdviceTaking = AdviceTaking()
    condition_advice: dict[str, AdviceTaking] = field(default_factory=dict)
    think_seconds: tuple[float, float] = (3.0, 25.0)

    def advice_taking(self, condition: str | None) -> AdviceTaking:
        """How bots take the advice under ``condition``."""
        return self.condition_advice.get(condition or "", self.advice)

    def __post_init__(self) -> None:
        for name in (
            "attention_fail_rate",
            "dropout_rate",
            "agree_with_ai",
            "own_accuracy",
            "notice_manipulation",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")


@dataclass
class BotOutcome:
    token: str
    completed: bool
    steps: int
    inattentive: bool


class Bot:
    """One simulated participant with its own random stream and clock."""

    def __init__(self, engine: StudyEngine, policy: Policy, rng: random.Random, start: datetime) -> None:
        self.engine = engine
        self.policy = policy
        self.rng = rng
        self.now = start
        self.inattentive = rng.random() < policy.attention_fail_rate
        self.drop_at = rng.random() if rng.random() < policy.dropout_rate else None
        self.levels: dict[str, float] = {}
        self.slopes: dict[tuple[str, str], float] = {}  # (construct, condition) → the bot's standard slope
        self.initial: dict[
            tuple[str, str], tuple[str, int]
        ] = {}  # (case, item) → first diagnosis, confidence

    def clock(self) -> datetime:
        return self.now

    def run(self, url_params: dict[str, str] | None = None) -> BotOutcome:
        engine = self.engine
        engine.clock = self.clock
        engine.order_seeds = lambda: self.rng.getrandbits(31)  # the case order follows the bot's seed
        statements = [s.id for s in engine.protocol.consent.statements]
        token = engine.consent(statements, url_params or {})
        position = engine.position(token)
        steps = 0
        while not position.completed:
            if (
                self.drop_at is not None
                and position.total
                and position.index / position.total >= self.drop_at
            ):
                break
            engine.mark_shown(token, position.index)
            self.now += timedelta(seconds=self.rng.uniform(*self.policy.think_seconds))
            position = engine.submit(token, position.step.key, self.answer(position))
            steps += 1
        return BotOutcome(token, position.completed, steps, self.inattentive)

    # --- answering ----------------------------------------------------------------------------------------
    def answer(self, position: Position) -> dict[str, object]:
        step = position.step
        answers: dict[str, object] = {}
        for item in step.items:
            if item.manipulation_check is not None:
                answers[item.id] = self._manipulation_check(item, step.condition or position.arm)
            elif item.attention_check is not None:
                answers[item.id] = self._attention_check(item)
            else:
                answers |= item.bot_answer(self, step)
        return answers

    def _attention_check(self, item: Item) -> int:
        """The instructed answer, or (an inattentive bot) any other."""
        assert item.attention_check is not None
        expected = int(item.attention_check.expected)
        if not self.inattentive:
            return expected
        return self.rng.choice([v for v in item.codes if v != expected])

    def scale_point(self, item: Item, step: Step) -> int:
        """A rating-scale answer (1..n): random, or drawn around the bot's latent level of the item's construct
        plus the planted shift and case effects (:class:`Policy`), rounded and clipped to the scale."""
        codes = item.codes
        if self.policy.kind == "random" or not item.construct:
            return self.rng.choice(codes)
        n = len(codes)
        level = self.levels.setdefault(item.construct, self.rng.gauss((n + 1) / 2, self.policy.person_sd))
        level_here = level + self.shift(step.condition, item.construct) + self.case_part(step, item.construct)
        value = min(n, max(1, round(self.rng.gauss(level_here, self.policy.noise_sd))))
        return n + 1 - value if item.reverse else value

    def _manipulation_check(self, item: Item, condition: str | None) -> int:
        """The answer expected under ``condition`` with probability ``notice_manipulation``, else another."""
        assert item.manipulation_check is not None
        expected = item.manipulation_check.expected.get(condition or "")
        if expected is not None and self.rng.random() < self.policy.notice_manipulation:
            return expected
        return self.rng.choice([code for code in item.codes if code != expected])

    def shift(self, condition: str | None, construct: str) -> float:
        """Planted shift of ``construct`` under ``condition`` (Likert points; 0 for the baseline)."""
        if condition in self.policy.condition_effects:
            return self.policy.condition_effects[condition].get(construct, 0.0)
        if condition is None or condition == self.engine.protocol.baseline:
            return 0.0
        return self.policy.effects.get(construct, 0.0)

    def case_part(self, step: Step, construct: str) -> float:
        """Case intercept + case × condition + participant × condition effect of this answer
        (:class:`CaseEffects`); the latter two only under a condition other than the baseline."""
        spec = self.policy.case_effects.get(construct, NO_CASE_EFFECTS)
        if spec == NO_CASE_EFFECTS:
            return 0.0
        seed, condition = self.policy.case_seed, step.condition
        part = 0.0
        if step.case_id:
            part += spec.case_sd * standard_normal(f"{seed}:{construct}:{step.case_id}")
        if condition is None or condition == self.engine.protocol.baseline:
            return part
        if step.case_id:
            part += spec.case_condition_sd * standard_normal(f"{seed}:{construct}:{step.case_id}:{condition}")
        slope = self.slopes.setdefault((construct, condition), self.rng.gauss(0.0, 1.0))
        return part + spec.participant_condition_sd * slope

    def diagnosis(self, step: Step, item: DiagnosisItem) -> dict[str, object]:
        """A diagnosis item's answer (and confidence): see :class:`Policy` for the three kinds of answer."""
        manifest = self.engine.loaded.bundle.manifest
        case = manifest.case(step.case_id) if step.case_id else None
        choices = [c.id for c in manifest.skin_conditions] + [UNSURE]
        points = item.confidence.points if item.confidence is not None else 0
        confidence: int | None = None
        if case is None:
            chosen = self.rng.choice(choices)
        elif not step.advice:  # alone, before the advice: from the bot's own accuracy, never from the AI
            right = self.rng.random() < self.policy.own_accuracy
            wrong = [c for c in choices if c != case.ground_truth]
            chosen = case.ground_truth if right else self.rng.choice(wrong)
        elif step.initial_step is not None:  # after the advice: keep or switch to the AI
            own, own_confidence = self.initial[(case.case_id, item.id + INITIAL_SUFFIX)]
            taking = self.policy.advice_taking(step.condition)
            switch = own != case.ai.skin_condition and self.rng.random() < taking.switches(case.ai_correct)
            chosen = case.ai.skin_condition if switch else own
            # more sure when the AI agrees with the final answer, less when it doesn't
            confidence = min(points, max(1, own_confidence + (1 if chosen == case.ai.skin_condition else -1)))
        elif self.rng.random() < self.policy.agree_with_ai:
            chosen = case.ai.skin_condition
        else:
            chosen = self.rng.choice(choices)
        answers: dict[str, object] = {item.id: chosen}
        if points:
            if confidence is None:
                confidence = self.rng.randint(1, points)
            answers[item.id + CONFIDENCE_SUFFIX] = confidence
        if case is not None and not step.advice:
            self.initial[(case.case_id, item.id)] = (chosen, confidence or 0)
        return answers


def simulate(
    engine: StudyEngine, n: int, *, seed: int = 0, policy: Policy | None = None, progress: bool = True
) -> list[BotOutcome]:
    """Run ``n`` bots one after another through ``engine``; several processes may do this at once.

    Bots live on a fixed virtual calendar (:data:`BOT_EPOCH`, one starting each second), so unfinished bots
    count as dropouts and the same seed gives the same export.
    """
    policy = policy or Policy()
    start = BOT_EPOCH
    outcomes = []
    for index in tqdm(range(n), desc="simulating participants", unit="bot", disable=not progress):
        rng = random.Random(f"{seed}:{index}")
        bot = Bot(engine, policy, rng, start + timedelta(seconds=index))
        params = {name: f"SIM{seed}-{index:06d}" for name in engine.protocol.url_parameters}
        outcome = bot.run(params)
        outcomes.append(outcome)
    return outcomes
