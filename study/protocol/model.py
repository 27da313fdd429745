"""The study protocol: one YAML file that drives the app, the allocation, the export and the codebook.

:class:`Protocol` is its root: the sections (:mod:`study.protocol.sections`), the items of each questionnaire
(:mod:`study.items`, one class per kind), the instruments it includes (:mod:`study.protocol.instrument_use`),
the checks across sections (:mod:`study.protocol.checks`) and the facts derived from it, so no other module
re-derives them. Loading a file, with field paths and line numbers, is :mod:`study.protocol.loading`.
"""

from __future__ import annotations

from pydantic import Field, ValidationError, field_validator, model_validator

from formats.contract import INITIAL_SUFFIX
from study.crossover import williams_orders
from study.items.base import Item
from study.protocol.checks import cross_check_problems
from study.protocol.instrument_use import InstrumentUse
from study.protocol.sections import (
    MAX_CONDITIONS,
    Cases,
    Completion,
    Consent,
    Debrief,
    Design,
    Exclusions,
    ExperimentalCondition,
    Hypothesis,
    Preregistration,
    Questionnaires,
    Randomization,
    RatingDesign,
    StudyInfo,
    TrialDesign,
)
from study.schema import Identifier
from study.schema import Model as _Model
from study.texts import LanguageCode, Text, declared_languages


class Protocol(_Model):
    study: StudyInfo
    languages: tuple[LanguageCode, ...] = Field(
        default=("en",),
        min_length=1,
        description="The languages participants may take the study in; each participant-facing text gives "
        "one entry per language ({en: …, de: …}). The first is the protocol's own: exports, codebook and "
        "reports use it, and participants whose language is not offered get it.",
    )
    consent: Consent
    design: Design
    conditions: tuple[ExperimentalCondition, ...] = Field(min_length=2, max_length=MAX_CONDITIONS)
    baseline: Identifier
    randomization: Randomization
    cases: Cases
    instructions: Text = ""
    questionnaires: Questionnaires
    trial: TrialDesign = TrialDesign()
    exclusions: Exclusions = Exclusions()
    debrief: Debrief = Debrief()
    completion: Completion
    url_parameters: tuple[Identifier, ...] = ()
    participant_label: Identifier | None = Field(
        default=None,
        description="A URL parameter that identifies a returning participant (e.g. PROLIFIC_PID): opening the "
        "recruiting link again resumes their study instead of starting a new one.",
    )
    resume_requires: tuple[Identifier, ...] = Field(
        default=(),
        description="URL parameters (of url_parameters) the platform sends per attempt, e.g. SESSION_ID: a "
        "returning participant resumes only if these equal the recorded ones too, so knowing someone's "
        "label is not enough to take over their study.",
    )
    retention_days: float | None = Field(
        default=None,
        gt=0,
        description="Days after a participant's last activity when their recorded identifiers (URL "
        "parameters, label) are purged (`skingen-study purge`, and `serve` at start). None: kept.",
    )
    dropout_after_minutes: float = Field(default=60, gt=0)
    rating: RatingDesign | None = None
    instruments: tuple[InstrumentUse, ...] = ()
    hypotheses: tuple[Hypothesis, ...] = ()
    preregistration: Preregistration = Preregistration()

    @field_validator("languages")
    @classmethod
    def _each_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"{list(value)} lists a language twice")
        return value

    @model_validator(mode="before")
    @classmethod
    def _expand_instruments(cls, data: object) -> object:
        """Append each instrument's items to its questionnaire block, so app, paths, export and codebook see
        ordinary items. Entries that don't validate are skipped here and reported at ``instruments[i]``."""
        if not isinstance(data, dict) or not isinstance(data.get("instruments"), list):
            return data
        questionnaires = data.get("questionnaires")
        if not isinstance(questionnaires, dict):
            return data
        expanded = dict(questionnaires)
        languages = declared_languages(data)
        for raw in data["instruments"]:
            try:
                use = InstrumentUse.model_validate(raw)
            except ValidationError:
                continue
            written = expanded.get(use.show) or []
            if isinstance(written, list | tuple):
                expanded[use.show] = [*written, *use.item_data(languages)]
        return {**data, "questionnaires": expanded}

    @model_validator(mode="after")
    def _cross_checks(self) -> Protocol:
        """Checks that need several sections (:mod:`study.protocol.checks`), every problem at once."""
        problems = cross_check_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # --- derived facts, so no other module re-derives them ---------------------------------------------
    @property
    def constructs(self) -> list[str]:
        """Constructs the questionnaires measure (items with a construct), in item order."""
        return list(dict.fromkeys(i.construct for i in self.items().values() if i.construct))

    @property
    def n_arms(self) -> int:
        """Arms of the allocation: conditions (between) or sequences (within): each condition order of the
        Williams design (k orders for even k, 2k for odd k) × k case-set rotations."""
        k = len(self.conditions)
        return len(williams_orders(k)) * k if self.design == "within" else k

    @property
    def condition_ids(self) -> tuple[str, ...]:
        """Condition ids in protocol order."""
        return tuple(c.id for c in self.conditions)

    @property
    def compared(self) -> str:
        """The compared condition of a two-arm study; '' when there are more (every pair is compared)."""
        others = [c.id for c in self.conditions if c.id != self.baseline]
        return others[0] if len(others) == 1 else ""

    @property
    def interactive_conditions(self) -> tuple[str, ...]:
        """Conditions whose participants talk with the live model (they need `skingen worker` processes)."""
        return tuple(c.id for c in self.conditions if c.interactive)

    def condition(self, condition_id: str) -> ExperimentalCondition:
        return next(c for c in self.conditions if c.id == condition_id)

    @property
    def strata(self) -> tuple[str, ...]:
        """Stratum names (the stratifying item's options), or a single '' stratum."""
        strat = self.randomization.stratify_by
        if strat is None:
            return ("",)
        item = next(i for i in self.questionnaires.entry if i.id == strat)
        return tuple(item.value_labels().values())

    @property
    def initial_items(self) -> tuple[Item, ...]:
        """Judge–advisor trials: what is asked before the AI's advice — each diagnosis item of the trial as
        ``<id>_initial`` (same text, confidence scale and ``show_in``). Empty when the advice comes with the
        case."""
        if not self.trial.judge_advisor:
            return ()
        return tuple(
            item.model_copy(update={"id": item.id + INITIAL_SUFFIX})
            for item in self.questionnaires.trial
            if item.diagnoses
        )

    def items(self) -> dict[str, Item]:
        """Every item by id: the questionnaires' and, in judge–advisor trials, the initial answers'."""
        items = {i.id: i for items in self.questionnaires.sections().values() for i in items}
        return items | {i.id: i for i in self.initial_items}
