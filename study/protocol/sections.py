"""The protocol's sections other than its items: consent, conditions, randomization, cases, questionnaires,
trial design, exclusions, completion, rating panel, hypotheses and preregistration (pydantic models; each
checks its own fields, :mod:`study.protocol.checks` what needs several sections)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from study.items import AnyItem
from study.items.base import Item
from study.references import REFERENCE_KINDS, ReferenceKind
from study.schema import Identifier
from study.schema import Model as _Model
from study.texts import Text

Design = Literal["between", "within"]
MAX_CONDITIONS = 8


class Statement(_Model):
    id: Identifier
    text: Text = Field(min_length=1)


class Consent(_Model):
    text: Text = Field(min_length=1, description="Markdown shown on the consent page.")

    statements: tuple[Statement, ...] = Field(min_length=1)


class ExperimentalCondition(_Model):
    """An experimental condition (arm of a between design): what explanation participants see."""

    id: Identifier
    label: str
    references: tuple[ReferenceKind, ...] = Field(
        description="Which example images the explanation shows beside the AI's text: 'none', 'generated' "
        "(SkinGEN's generated references), 'retrieved' (real photos retrieved from an image set), or a list "
        "combining the two. Stored as the tuple of kinds shown (() for none)."
    )
    interactive: bool = Field(
        default=False,
        description="Participants may ask the live model about each case and request references generated "
        "for it (needs `skingen worker` processes on the study database).",
    )
    follow_up_questions: int = Field(
        default=3, ge=0, le=20, description="Interactive conditions: follow-up questions allowed per case."
    )
    live_references: int = Field(
        default=3,
        ge=0,
        le=8,
        description="Interactive conditions: images per request for references (0: none).",
    )

    @field_validator("references", mode="before")
    @classmethod
    def _reference_kinds(cls, value: object) -> object:
        """Accept 'none', one kind, or a list; the 1.x boolean form reads true → generated, false → none."""
        if isinstance(value, bool):
            return ("generated",) if value else ()
        if value == "none":
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list | tuple):
            if "none" in value:
                raise ValueError("'none' cannot be combined with other reference kinds")
            if len(set(value)) != len(value):
                raise ValueError(f"lists a reference kind twice: {list(value)}")
        return value

    @field_validator("references")
    @classmethod
    def _canonical_order(cls, value: tuple[ReferenceKind, ...]) -> tuple[ReferenceKind, ...]:
        """[retrieved, generated] and [generated, retrieved] are one explanation: store kinds in one order."""
        return tuple(kind for kind in REFERENCE_KINDS if kind in value)

    def shows(self, kind: ReferenceKind) -> bool:
        """Whether this condition's explanation shows references of ``kind``."""
        return kind in self.references

    @property
    def explanation(self) -> tuple[str, ...]:
        """What the explanation adds to the AI's text; two conditions must differ in it."""
        return self.references + (("interactive",) if self.interactive else ())


class Randomization(_Model):
    method: Literal["permuted_blocks"] = "permuted_blocks"
    block_sizes: tuple[int, ...] = Field(min_length=1)
    seed: int
    stratify_by: Identifier | None = Field(default=None, description="An entry item (single_choice).")
    table_size: int = Field(default=200, ge=1, le=100_000, description="Slots per stratum made in advance.")


class Cases(_Model):
    bundle: str = Field(description="Bundle directory, relative to the protocol file.")
    demo: bool = Field(
        default=False,
        description="The bundle is the synthetic demo bundle: when it is missing, say how to draw it.",
    )
    include: tuple[str, ...] | Literal["all"] = "all"
    order: Literal["random", "fixed"] = "random"


class Questionnaires(_Model):
    entry: tuple[AnyItem, ...] = ()
    trial: tuple[AnyItem, ...] = Field(min_length=1)
    post_block: tuple[AnyItem, ...] = ()
    post: tuple[AnyItem, ...] = ()

    def sections(self) -> dict[str, tuple[Item, ...]]:
        return {"entry": self.entry, "trial": self.trial, "post_block": self.post_block, "post": self.post}


AdviceTiming = Literal["with_case", "after_initial"]


class TrialDesign(_Model):
    """When the AI's advice is shown within a trial.

    ``with_case`` (default): the case photo, the AI's diagnosis and the condition's references together, then
    every trial question. ``after_initial``: a judge–advisor trial (Sniezek & Buckley 1995), the design
    reliance research uses: the participant first answers the trial's diagnosis items (and their confidence)
    from the photo alone — stored as ``<id>_initial`` before the advice reaches the browser, and never
    changed afterwards — then sees the AI's advice with the condition's references and answers every trial
    question, the diagnosis items again as their final answer. Only then can the analysis tell whether anyone
    changed their mind (switch rate, RAIR/RSR; docs/analysis.md).
    """

    advice: AdviceTiming = Field(
        default="with_case",
        description="with_case: the AI's advice comes with the case; after_initial: the participant's own "
        "diagnosis and confidence first, then the advice, then the final diagnosis and confidence.",
    )

    @property
    def judge_advisor(self) -> bool:
        return self.advice == "after_initial"


class Exclusions(_Model):
    """Declared before data: who is left out of the confirmatory analysis."""

    max_failed_attention_checks: int | None = Field(default=0, ge=0)
    min_duration_seconds: float | None = Field(default=None, ge=0)
    exclude_incomplete: bool = True


class Completion(_Model):
    code: str = Field(min_length=1, max_length=64)
    redirect_url: str | None = Field(default=None, description="May contain '{code}'.")
    message: Text = Field(default="", description="Shown above the code (default: the app's thank-you line).")


class Debrief(_Model):
    """The page after the last questions, and what the completion page reveals.

    Written as a text alone (``debrief: |`` …, or ``{en: …, de: …}``) or as a mapping with ``text`` and
    ``reveal_wrong_ai``.
    """

    text: Text = Field(default="", description="Markdown of the debrief page (none: no debrief page).")
    reveal_wrong_ai: bool = Field(
        default=False,
        description="The completion page lists which of the participant's cases had a deliberately wrong AI "
        "diagnosis (the bundle's cases whose AI diagnosis differs from the ground truth).",
    )

    @model_validator(mode="before")
    @classmethod
    def _text_alone(cls, value: object) -> object:
        text_alone = isinstance(value, dict) and value and not {"text", "reveal_wrong_ai"} & set(value)
        if isinstance(value, str) or text_alone:
            return {"text": value}  # the text alone, in one language or as {language: text}
        return value


class RatingDesign(_Model):
    """Expert rating task: dermatologists rate the bundle's generated references (and, blind, case photos and
    the real references retrieved for each case)."""

    raters: int = Field(ge=1, le=500, description="Planned panel size: images are split across these slots.")
    raters_per_image: int = Field(ge=1, description="How many raters each image needs.")
    include_case_photos: bool = Field(
        default=True, description="Mix real case photos in, so raters are blind."
    )
    include_retrieved: bool = Field(
        default=False,
        description="Mix the bundle's retrieved real references in (bundles built with --retrieve), so real "
        "and generated references are rated alike, blind.",
    )
    seed: int = 0
    instructions: Text = ""
    items: tuple[AnyItem, ...] = Field(min_length=1)
    relevance_item: Identifier | None = Field(
        default=None,
        description="The yes/no or Likert item asking whether the image shows its condition: the analysis "
        "compares it with each reference's closed-loop check (skingen bundle build --evaluate).",
    )

    @model_validator(mode="after")
    def _fits_panel(self) -> RatingDesign:
        if self.raters_per_image > self.raters:
            raise ValueError(
                f"raters_per_image ({self.raters_per_image}) exceeds the panel size ({self.raters})"
            )
        ids = [i.id for i in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("item ids must be unique")
        if any(i.diagnoses or i.show_in for i in self.items):
            raise ValueError("rating items can't be diagnosis items or use show_in")
        judged = [i.id for i in self.items if i.level in ("binary", "ordinal")]  # yes/no and Likert
        if self.relevance_item is not None and self.relevance_item not in judged:
            raise ValueError(
                f"relevance_item {self.relevance_item!r} is not one of the yes/no or Likert items {judged}"
            )
        return self


Direction = Literal["greater", "less", "two_sided", "equivalent", "non_inferior"]
EQUIVALENCE_DIRECTIONS = ("equivalent", "non_inferior")
"""Directions tested against a smallest effect size of interest (TOST; Lakens 2017): they need ``sesoi``."""


class Hypothesis(_Model):
    """A preregistered (confirmatory) test: ``construct`` under ``comparison[0]`` vs ``comparison[1]``."""

    id: Identifier
    construct: Identifier
    comparison: tuple[Identifier, Identifier] = Field(
        description="Two conditions: the first is compared with the second."
    )
    direction: Direction = Field(
        description="greater: the first condition scores higher; less; two_sided; equivalent: the difference "
        "lies within ±sesoi; non_inferior: the first is at most sesoi below the second (higher is better)."
    )
    sesoi: float | None = Field(
        default=None,
        gt=0,
        description="Smallest effect size of interest, in construct-score points (the scale's own units, e.g. "
        "0.5 for half a Likert point): the equivalence bounds ±sesoi or the non-inferiority margin. Required "
        "by equivalent/non_inferior, and only used by them.",
    )
    alpha: float = Field(default=0.05, gt=0, lt=1)
    statement: str = Field(default="", description="The hypothesis in words.")


class SampleSize(_Model):
    """The planned sample and the power analysis behind it."""

    participants: int = Field(ge=2, description="Participants to be analysed (after exclusions).")
    effect: float = Field(gt=0, description="Smallest effect of interest: d_z (within) or d (between).")
    power: float = Field(default=0.8, gt=0, lt=1)
    rationale: str = Field(default="", description="Where the effect size comes from.")
    cases: int | None = Field(
        default=None,
        ge=2,
        description="Cases each participant judges (default: every case of the bundle); the mixed model's power "
        "depends on it as much as on the participants.",
    )
    cases_rationale: str = Field(
        default="", description="Why this many cases (e.g. the 'how many cases?' table)."
    )
    point_effect: float | None = Field(
        default=None,
        gt=0,
        description="Smallest effect of interest in scale points for the mixed model's power (default: `effect` "
        "read in points, i.e. per residual SD of 1 point).",
    )
    components: dict[str, float] = Field(
        default_factory=dict,
        description="Variance components (SDs in scale points) for the mixed model's power, e.g. from a pilot's "
        "report: participant, participant_condition, case, case_condition, residual; the others keep the "
        "defaults of formats.planning.VarianceComponents.",
    )

    @field_validator("components")
    @classmethod
    def _known_components(cls, value: dict[str, float]) -> dict[str, float]:
        from formats.planning import VarianceComponents

        known = set(VarianceComponents.__dataclass_fields__)
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown variance component(s) {unknown}; known: {sorted(known)}")
        VarianceComponents(**value)  # each ≥ 0
        return value


class Preregistration(_Model):
    """How the confirmatory hypotheses are tested; with the exclusions, the plan ``prereg`` writes out."""

    correction: Literal["holm", "bonferroni", "none"] = Field(
        default="holm", description="Multiplicity correction across the hypotheses."
    )
    sample_size: SampleSize | None = None
    stopping_rule: str = Field(default="", description="When data collection stops.")


class StudyInfo(_Model):
    id: Identifier
    title: Text
    version: str
