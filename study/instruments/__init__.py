"""Published questionnaires as data files: wording, scale, keying, subscales, scoring rule, citation, licence.

Each ``<id>.yaml`` beside this module is one instrument. A protocol includes it by id (``instruments:``) and
its items become ordinary questionnaire items (:mod:`study.protocol`); the export carries each item's
instrument, subscale and keying, and the analysis scores it by the rule recorded here. An instrument whose
licence does not allow us to redistribute its wording ships as a *template*: every fact but the item texts,
and ``obtain`` says where to get them (the protocol then supplies them under ``wording:``).
"""

from __future__ import annotations

import string
from functools import cache
from importlib import resources
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from study.schema import Identifier, Model, Scale

ItemKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$", max_length=32)]
"""An item's key within its instrument: the protocol item id is ``<prefix>_<key>``."""


class InstrumentError(ValueError):
    """An instrument file that is missing or invalid; the message names the file and field."""


class InstrumentItem(Model):
    key: ItemKey
    text: str | None = Field(
        default=None, description="Published wording; None in a template (licence does not allow sharing)."
    )
    reverse: bool = False
    subscale: Identifier | None = None
    anchors: dict[int, str] | None = Field(
        default=None,
        description="End labels of this item where the form gives it its own (else the scale's).",
    )


class Scoring(Model):
    """score = multiplier × aggregate(keyed answer + offset) over the items; keyed = points + 1 − answer for
    reverse-keyed items. ``rule`` says it in the publication's words; ``missing`` states the missing-item rule,
    which ``max_missing`` enforces (a ``sum`` over fewer items is prorated to the full item count)."""

    rule: str = Field(min_length=1)
    aggregate: Literal["mean", "sum"]
    offset: float = 0
    multiplier: float = 1
    range: tuple[float, float]
    missing: str = Field(min_length=1)
    max_missing: int = Field(ge=0)


class Grade(Model):
    grade: str
    min: float


class Adjective(Model):
    label: str
    mean: float


class Norms(Model):
    """Published reference values to place a study's scores against."""

    source: str = Field(min_length=1)
    mean: float
    sd: float = Field(gt=0)
    grades: tuple[Grade, ...] = Field(min_length=1, description="Highest first.")
    grades_source: str = Field(min_length=1)
    adjectives: tuple[Adjective, ...] = ()
    adjectives_source: str = ""


class Instrument(Model):
    id: Identifier
    name: str = Field(min_length=1)
    measures: str = Field(min_length=1, description="What it measures, in a few words.")
    reference: str = Field(min_length=1, description="Short author–year reference.")
    citation: str = Field(min_length=1)
    wording_source: str = Field(min_length=1, description="Where the item wording below was taken from.")
    licence_name: str = Field(min_length=1, description="The licence in a few words.")
    licence: str = Field(min_length=1)
    obtain: str | None = Field(default=None, description="Templates: where to get the wording.")
    placeholders: dict[Identifier, str] = Field(
        default_factory=dict, description="Slots in the wording ({name}) and what the publication puts there."
    )
    scale: Scale
    items: tuple[InstrumentItem, ...] = Field(min_length=2)
    scoring: Scoring
    norms: Norms | None = None
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        keys = [i.key for i in self.items]
        if len(set(keys)) != len(keys):
            raise ValueError("item keys must be unique")
        with_text = [i.text is not None for i in self.items]
        if any(with_text) and not all(with_text):
            raise ValueError("give the wording of every item, or of none (a template)")
        if self.is_template and not self.obtain:
            raise ValueError("a template (items without text) must say in 'obtain' where to get the wording")
        if self.scoring.max_missing >= len(self.items):
            raise ValueError("scoring.max_missing must leave at least one item")
        for item in self.items:
            if item.anchors is not None:
                Scale(points=self.scale.points, anchors=item.anchors)  # same points, own labels
            for slot in _slots(item.text or ""):
                if slot not in self.placeholders:
                    raise ValueError(f"item {item.key}: placeholder {{{slot}}} is not in 'placeholders'")
        return self

    @property
    def is_template(self) -> bool:
        return self.items[0].text is None

    def item(self, key: str) -> InstrumentItem:
        return next(i for i in self.items if i.key == key)

    @property
    def subscales(self) -> dict[str, tuple[str, ...]]:
        """Subscale → its item keys, in item order."""
        out: dict[str, tuple[str, ...]] = {}
        for item in self.items:
            if item.subscale:
                out[item.subscale] = (*out.get(item.subscale, ()), item.key)
        return out


def _slots(text: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def _files() -> dict[str, resources.abc.Traversable]:
    folder = resources.files(__name__)
    return {f.name.removesuffix(".yaml"): f for f in folder.iterdir() if f.name.endswith(".yaml")}


def instrument_ids() -> tuple[str, ...]:
    """Ids of the shipped instruments, sorted."""
    return tuple(sorted(_files()))


@cache
def load_instrument(instrument_id: str) -> Instrument:
    """The shipped instrument ``instrument_id``; :class:`InstrumentError` names the file and field."""
    files = _files()
    if instrument_id not in files:
        raise InstrumentError(f"no instrument {instrument_id!r}; shipped: {', '.join(instrument_ids())}")
    name = f"study/instruments/{instrument_id}.yaml"
    try:
        data = yaml.safe_load(files[instrument_id].read_text(encoding="utf-8"))
        instrument = Instrument.model_validate(data)
    except yaml.YAMLError as exc:
        raise InstrumentError(f"{name}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise InstrumentError(f"{name}: {problems}") from None
    if instrument.id != instrument_id:
        raise InstrumentError(f"{name}: id {instrument.id!r} differs from the file name")
    return instrument


def summary_line(instrument: Instrument) -> str:
    """One line of ``skingen-study instruments``: id, items, scale, citation (first author, year), licence."""
    scale = f"{instrument.scale.points}-point"
    return (
        f"{instrument.id:<26} {len(instrument.items):>2} items  {scale:<9} {instrument.reference:<30} "
        f"{instrument.licence_name}"
    )


def describe(instrument: Instrument) -> str:
    """The full text of ``skingen-study instruments show ID``."""
    scale = instrument.scale
    lines = [
        f"{instrument.name} ({instrument.id})",
        f"measures:  {instrument.measures}",
        f"citation:  {instrument.citation}",
        f"wording:   {instrument.wording_source}",
        f"licence:   {instrument.licence}",
    ]
    if instrument.obtain:
        lines.append(f"obtain:    {instrument.obtain}")
    if instrument.placeholders:
        slots = ", ".join(f"{{{k}}} = {v}" for k, v in instrument.placeholders.items())
        lines.append(f"fill:      {slots} (the protocol's instruments[].fill)")
    anchors = ", ".join(f"{k} = {v}" for k, v in sorted(scale.anchors.items()))
    lines += [f"scale:     1..{scale.points} ({anchors})", "items:"]
    for number, item in enumerate(instrument.items, start=1):
        tags = [t for t in ("reverse keyed" if item.reverse else "", item.subscale or "") if t]
        if item.anchors:
            tags.append("anchors " + ", ".join(f"{k} = {v}" for k, v in sorted(item.anchors.items())))
        text = item.text if item.text is not None else "(wording not shipped)"
        lines.append(f"  {number:>2}. [{item.key}] {text}" + (f"  ({'; '.join(tags)})" if tags else ""))
    scoring = instrument.scoring
    lines += [
        f"scoring:   {scoring.rule}",
        f"range:     {scoring.range[0]:g}–{scoring.range[1]:g}",
        f"missing:   {scoring.missing}",
    ]
    if instrument.norms:
        norms = instrument.norms
        lines.append(f"norms:     mean {norms.mean:g}, SD {norms.sd:g} — {norms.source}")
        lines.append("grades:    " + ", ".join(f"{g.grade} ≥ {g.min:g}" for g in norms.grades))
    if instrument.notes:
        lines.append(f"notes:     {instrument.notes}")
    return "\n".join(lines) + "\n"
