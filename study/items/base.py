"""What every questionnaire item is, whatever its kind; each kind (one module beside this one) adds the rest.

An item kind is one class: its protocol fields and their checks (pydantic), the answer fields it stores and
how it checks an answer, its codebook variables, a bot's answer, and its Streamlit widget. Everything that
reads items — the participant path, the export and codebook, the bots, the app, the test driver — asks the
item, so a new kind is one module plus its line in the registry (:mod:`study.items`), and a kind that lacks
a part fails at import, never in front of a participant.

The widget methods import Streamlit lazily: the study's engine, bots and exports never load it.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, model_validator

from formats.contract import AS_INTENDED, MANIPULATION_CONSTRUCT
from study.items.answers import AnswerProblem, Checked
from study.schema import Identifier, Model
from study.texts import Text

if TYPE_CHECKING:
    from study.path import Step
    from study.simulate import Bot

# "construct" is the natural protocol key; it shadows only pydantic's deprecated BaseModel.construct().
warnings.filterwarnings("ignore", message='Field name "construct"', category=UserWarning)


class AttentionCheck(Model):
    """An instructed-response item: the answer the participant was told to give."""

    expected: int | str


class ManipulationCheck(Model):
    """An item asking what the explanation showed: per condition, the answer of a participant who noticed
    their condition's manipulation (reported by arm; the export adds ``<id>__as_intended`` 0/1)."""

    expected: dict[Identifier, int] = Field(
        min_length=2, description="Condition id → the answer code that shows the manipulation was noticed."
    )


class InstrumentRef(Model):
    """Where an item expanded from ``instruments:`` comes from (set by the expansion, not written by hand)."""

    id: Identifier = Field(description="The shipped instrument.")
    key: str = Field(description="The item's key within the instrument.")
    subscale: Identifier | None = None
    adapted: bool = Field(default=False, description="Its wording differs from the published one.")


@dataclass(frozen=True)
class Variable:
    """One row of the codebook: an exported variable, what it means and how it is coded."""

    variable: str
    label: str
    type: str
    construct: str
    scale_min: float | None
    scale_max: float | None
    value_labels: str
    reverse_coded: bool
    required: bool
    attention_check: bool
    shown_in: str
    source: str
    instrument: str
    subscale: str
    keying: str
    adapted: bool


def value_labels_text(labels: Mapping[int, str] | Mapping[str, str]) -> str:
    """Code → label pairs as the codebook writes them: ``1=Not at all; 7=Completely``."""
    return "; ".join(f"{code}={label}" for code, label in labels.items())


@dataclass(frozen=True)
class WidgetPlace:
    """Where an item's widget goes: ``key(field)`` is the session-state key of an answer field's widget (the
    app reads the answers back by these keys), ``skin_conditions`` the bundle's skin condition id → display
    name (what a diagnosis item offers), ``translate`` the app's gettext for the kinds' own words (marked
    ``N_``; the participant's language)."""

    key: Callable[[str], str]
    skin_conditions: Mapping[str, str]
    translate: Callable[[str], str]


YES_NO = {0: "no", 1: "yes"}


class Item(Model):
    """One question. Subclasses (one per kind) fix ``type`` and add their fields, checks and behaviour."""

    measures: ClassVar[bool] = False
    """It may measure a construct (its answers are numbers a construct score averages)."""
    rating_scale: ClassVar[bool] = False
    """Its answers are positions on a scale anchored at both ends: it may be reverse keyed, and a construct of
    its items asked per case is a rating the mixed model fits."""
    planted: ClassVar[bool] = False
    """Bots draw its answers from their latent level of its construct, so a planted effect shows in it."""
    diagnoses: ClassVar[bool] = False
    """Its answer names a condition of the bundle: compared per case with the AI's advice and the truth, and
    asked before the advice too in judge–advisor trials."""
    continuous: ClassVar[bool] = False
    """Its answers are positions on a continuum (a visual analogue scale): a construct with such an item
    holds only items of its kind and range, or its score would average unlike numbers."""
    level: ClassVar[str]
    """The codebook's ``type`` of its answer variable (ordinal, nominal, binary, numeric, text, condition_id)."""

    id: Identifier
    text: Text = Field(min_length=1)
    type: str
    construct: Identifier | None = None
    reverse: bool = False
    required: bool = True
    attention_check: AttentionCheck | None = None
    manipulation_check: ManipulationCheck | None = None
    show_in: tuple[str, ...] | None = Field(default=None, description="Only under these conditions.")
    help: Text = ""
    instrument: InstrumentRef | None = None

    @model_validator(mode="after")
    def _common_checks(self) -> Item:
        """What any item may carry depends on its kind: constructs, reverse keying, checks."""
        if self.reverse and not self.rating_scale:
            raise ValueError(f"a {self.type} item can't be reverse coded (only rating scales can)")
        if self.construct and not self.measures:
            raise ValueError(f"a {self.type} item can't measure a construct (its answers aren't numbers)")
        codes = self.codes
        if self.manipulation_check is not None:
            if not codes:
                raise ValueError("manipulation checks must be coded items (likert, single_choice, yes_no)")
            wrong = {c: v for c, v in self.manipulation_check.expected.items() if v not in codes}
            if wrong:
                raise ValueError(
                    f"manipulation_check.expected {wrong} are not valid answers ({min(codes)}..{max(codes)})"
                )
            if self.attention_check is not None:
                raise ValueError("an item is an attention check or a manipulation check, not both")
        if self.attention_check is not None:
            expected = self.attention_check.expected
            if not codes or not isinstance(expected, int):
                raise ValueError(
                    "attention checks must be coded items (likert, single_choice, yes_no) with an integer "
                    "'expected'"
                )
            if expected not in codes:
                raise ValueError(
                    f"attention_check.expected {expected} is not a valid answer ({min(codes)}..{max(codes)})"
                )
        return self

    # --- values --------------------------------------------------------------------------------------------
    def value_labels(self) -> dict[int, str]:
        """Code → label of a coded item (Likert points 1..n, choices 1..k, No = 0 / Yes = 1); {} otherwise."""
        return {}

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(self.value_labels())

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """The smallest and largest answer (the codebook's scale_min/scale_max); None where open or not a
        number."""
        codes = self.codes
        return (min(codes), max(codes)) if codes else (None, None)

    # --- answers -------------------------------------------------------------------------------------------
    @property
    def fields(self) -> tuple[str, ...]:
        """The answer fields it stores (each a row of responses.csv): its id, and for some kinds more."""
        return (self.id,)

    @abstractmethod
    def check_answer(self, field: str, raw: object, skin_conditions: set[str]) -> Checked | AnswerProblem:
        """One answer to ``field`` (one of :attr:`fields`; not empty) → as stored, or what is wrong with it.
        ``skin_conditions`` are the bundle's skin condition ids."""

    # --- codebook ------------------------------------------------------------------------------------------
    def variables(self, section: str, *, initial: bool = False) -> list[Variable]:
        """The codebook variables it produces: its answer, and ``<id>__as_intended`` for a manipulation check.

        ``initial``: the item is the answer before the AI's advice of a judge–advisor trial (only kinds that
        :attr:`diagnoses` are asked so)."""
        low, high = self.bounds
        answer = self.variable(self.id, self.text, self.level, section, low, high, self.value_labels())
        if self.manipulation_check is None:
            return [answer]
        expected = "; ".join(f"{c}={code}" for c, code in self.manipulation_check.expected.items())
        label = f"{self.id} answered as expected under the participant's condition ({expected})"
        return [
            answer,
            self.variable(
                self.id + AS_INTENDED, label, "binary", "derived", 0, 1, YES_NO, MANIPULATION_CONSTRUCT
            ),
        ]

    def variable(
        self,
        name: str,
        label: str,
        kind: str,
        source: str,
        low: float | None = None,
        high: float | None = None,
        labels: Mapping[int, str] | None = None,
        construct: str | None = None,
    ) -> Variable:
        """One codebook variable of this item: its own answer (``name == id``) carries the item's construct,
        keying and instrument; derived and companion variables name their own construct (or none)."""
        own = name == self.id
        ref = self.instrument if own else None
        return Variable(
            variable=name,
            label=label,
            type=kind,
            construct=(self.construct or "") if construct is None and own else (construct or ""),
            scale_min=low,
            scale_max=high,
            value_labels=value_labels_text(labels or {}),
            reverse_coded=self.reverse and own,
            required=self.required and source != "derived",
            attention_check=self.attention_check is not None and own,
            shown_in=",".join(self.show_in or ()),
            source=source,
            instrument=ref.id if ref else "",
            subscale=(ref.subscale or "") if ref else "",
            keying=("reverse" if self.reverse else "forward")
            if own and self.construct and self.rating_scale
            else "",
            adapted=bool(ref and ref.adapted),
        )

    # --- bots and drivers ----------------------------------------------------------------------------------
    @abstractmethod
    def bot_answer(self, bot: Bot, step: Step) -> dict[str, object]:
        """A simulated participant's answers (field → value), drawn from ``bot.rng`` (study.simulate)."""

    @abstractmethod
    def example_answer(self, level: int) -> dict[str, object]:
        """A valid answer (field → value) leaning to scale point ``level``: what the app's test driver enters
        (tests/app_driver.py), so the same test walks any kind."""

    # --- the widget ----------------------------------------------------------------------------------------
    @abstractmethod
    def widget(self, place: WidgetPlace) -> None:
        """Draw the item inside the step's ``st.form``, nothing preselected (imports Streamlit lazily)."""

    def read(self, widget_value: Callable[[str], object]) -> dict[str, object]:
        """The raw answers (field → value) from the widgets' state (``widget_value(name)``, None when unset)."""
        return {field: widget_value(field) for field in self.fields}

    def widget_values(self, answers: Mapping[str, object]) -> dict[str, object]:
        """The widget states (name → value) that :meth:`read` turns into ``answers``: the inverse, for
        drivers that set widgets the way a participant does."""
        return dict(answers)
