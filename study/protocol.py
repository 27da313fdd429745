"""The study protocol: one YAML file that drives the app, the allocation, the export and the codebook.

The schema is pydantic; :func:`load_protocol` turns every problem into one :class:`ProtocolError` that lists each
offending field by its path (``questionnaires.post[2].scale.points: …``) and, where known, its line in the file.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from skingen.bundle.manifest import Bundle, BundleError, BundleManifest, BundleNotFoundError, load_bundle

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=64)]
ItemType = Literal["likert", "single_choice", "yes_no", "free_text", "diagnosis", "number"]
CODED_TYPES = frozenset({"likert", "single_choice", "yes_no"})
Design = Literal["between", "within"]

UNSURE = "unsure"
"""The answer code of a diagnosis item for 'I don't know'."""


class ProtocolError(ValueError):
    """A protocol file that cannot be used. ``problems`` holds one line per offending field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid protocol\n  " + "\n  ".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scale(_Model):
    """A numeric rating scale coded 1..points; anchors label some (at least the two ends) of the points."""

    points: int = Field(ge=2, le=11)
    anchors: dict[int, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _anchors_in_range(self) -> Scale:
        outside = sorted(k for k in self.anchors if not 1 <= k <= self.points)
        if outside:
            raise ValueError(f"anchors {outside} lie outside 1..{self.points}")
        return self

    def label(self, point: int) -> str:
        return self.anchors.get(point, str(point))


class AttentionCheck(_Model):
    """An instructed-response item: the answer the participant was told to give."""

    expected: int | str


# "construct" is the natural protocol key; it shadows only pydantic's deprecated BaseModel.construct().
warnings.filterwarnings("ignore", message='Field name "construct"', category=UserWarning)


class Item(_Model):
    """One question. Values are coded: Likert points 1..n, single choice 1..len(options)."""

    id: Identifier
    text: str = Field(min_length=1)
    type: ItemType
    scale: Scale | None = None
    options: tuple[str, ...] | None = None
    confidence: Scale | None = Field(default=None, description="Diagnosis items: confidence rating scale.")
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = Field(default=2000, ge=1, le=20000)
    construct: Identifier | None = None
    reverse: bool = False
    required: bool = True
    attention_check: AttentionCheck | None = None
    show_in: tuple[str, ...] | None = Field(default=None, description="Only under these conditions.")
    help: str = ""

    @model_validator(mode="after")
    def _fields_for_type(self) -> Item:
        if self.type == "likert" and self.scale is None:
            raise ValueError("a likert item needs 'scale'")
        if self.type == "single_choice" and (not self.options or len(self.options) < 2):
            raise ValueError("a single_choice item needs at least 2 'options'")
        if self.reverse and self.type != "likert":
            raise ValueError("only likert items can be reverse coded")
        if self.construct and self.type not in {"likert", "number"}:
            raise ValueError("only likert and number items measure a construct")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("'minimum' is larger than 'maximum'")
        if self.attention_check is not None:
            expected = self.attention_check.expected
            if self.type not in CODED_TYPES or not isinstance(expected, int):
                raise ValueError(
                    "attention checks must be likert/single_choice/yes_no items with an integer 'expected'"
                )
            if expected not in self.codes:
                raise ValueError(
                    f"attention_check.expected {expected} is not a valid answer "
                    f"({min(self.codes)}..{max(self.codes)})"
                )
            if self.type == "likert" and self.scale is not None and expected not in self.scale.anchors:
                raise ValueError(
                    f"attention_check.expected {expected} has no anchor label in scale.anchors, so participants "
                    "can't see which point the instruction means: label it"
                )
        return self

    def value_labels(self) -> dict[int, str]:
        """Code → label of a coded item: Likert points 1..n, choices 1..k, No = 0 / Yes = 1."""
        if self.type == "likert":
            assert self.scale is not None
            return {p: self.scale.label(p) for p in range(1, self.scale.points + 1)}
        if self.type == "single_choice":
            return dict(enumerate(self.options or (), start=1))
        if self.type == "yes_no":
            return {0: "No", 1: "Yes"}
        return {}

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(self.value_labels())


class Statement(_Model):
    id: Identifier
    text: str = Field(min_length=1)


class Consent(_Model):
    text: str = Field(min_length=1, description="Markdown shown on the consent page.")
    statements: tuple[Statement, ...] = Field(min_length=1)


class ExperimentalCondition(_Model):
    """An experimental condition (arm of a between design): what explanation participants see."""

    id: Identifier
    label: str
    references: bool = Field(
        description="Show the generated reference images (the SkinGEN visual explanation)."
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
    entry: tuple[Item, ...] = ()
    trial: tuple[Item, ...] = Field(min_length=1)
    post_block: tuple[Item, ...] = ()
    post: tuple[Item, ...] = ()

    def sections(self) -> dict[str, tuple[Item, ...]]:
        return {"entry": self.entry, "trial": self.trial, "post_block": self.post_block, "post": self.post}


class Exclusions(_Model):
    """Declared before data: who is left out of the confirmatory analysis."""

    max_failed_attention_checks: int | None = Field(default=0, ge=0)
    min_duration_seconds: float | None = Field(default=None, ge=0)
    exclude_incomplete: bool = True


class Completion(_Model):
    code: str = Field(min_length=1, max_length=64)
    redirect_url: str | None = Field(default=None, description="May contain '{code}'.")
    message: str = "Thank you for taking part."


class RatingDesign(_Model):
    """Expert rating task: dermatologists rate the bundle's generated references (and, blind, case photos)."""

    raters: int = Field(ge=1, le=500, description="Planned panel size: images are split across these slots.")
    raters_per_image: int = Field(ge=1, description="How many raters each image needs.")
    include_case_photos: bool = Field(
        default=True, description="Mix real case photos in, so raters are blind."
    )
    seed: int = 0
    instructions: str = ""
    items: tuple[Item, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _fits_panel(self) -> RatingDesign:
        if self.raters_per_image > self.raters:
            raise ValueError(
                f"raters_per_image ({self.raters_per_image}) exceeds the panel size ({self.raters})"
            )
        ids = [i.id for i in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("item ids must be unique")
        if any(i.type == "diagnosis" or i.show_in for i in self.items):
            raise ValueError("rating items can't be diagnosis items or use show_in")
        return self


class StudyInfo(_Model):
    id: Identifier
    title: str
    version: str


class Protocol(_Model):
    study: StudyInfo
    consent: Consent
    design: Design
    conditions: tuple[ExperimentalCondition, ...] = Field(min_length=2, max_length=2)
    baseline: Identifier
    randomization: Randomization
    cases: Cases
    instructions: str = ""
    questionnaires: Questionnaires
    exclusions: Exclusions = Exclusions()
    debrief: str = ""
    completion: Completion
    url_parameters: tuple[Identifier, ...] = ()
    participant_label: Identifier | None = Field(
        default=None,
        description="A URL parameter that identifies a returning participant (e.g. PROLIFIC_PID): opening the "
        "recruiting link again resumes their study instead of starting a new one.",
    )
    dropout_after_minutes: float = Field(default=60, gt=0)
    rating: RatingDesign | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> Protocol:
        problems = []
        condition_ids = [c.id for c in self.conditions]
        if len(set(condition_ids)) != len(condition_ids):
            problems.append("conditions: ids must be unique")
        if self.baseline not in condition_ids:
            problems.append(f"baseline: {self.baseline!r} is not one of the conditions {condition_ids}")
        if sum(c.references for c in self.conditions) != 1:
            problems.append("conditions: exactly one condition must show references (the visual explanation)")
        seen: set[str] = set()
        for section, items in self.questionnaires.sections().items():
            for item in items:
                if item.id in seen:
                    problems.append(f"questionnaires.{section}: item id {item.id!r} is used twice")
                seen.add(item.id)
                unknown = set(item.show_in or ()) - set(condition_ids)
                if unknown:
                    problems.append(
                        f"questionnaires.{section}: {item.id}.show_in names unknown {sorted(unknown)}"
                    )
        n_arms = self.n_arms
        for size in self.randomization.block_sizes:
            if size % n_arms:
                problems.append(
                    f"randomization.block_sizes: {size} is not a multiple of the {n_arms} "
                    f"{'sequences' if self.design == 'within' else 'arms'} of a {self.design} design"
                )
        if self.participant_label is not None and self.participant_label not in self.url_parameters:
            problems.append(f"participant_label: {self.participant_label!r} must be one of url_parameters")
        strat = self.randomization.stratify_by
        if strat is not None:
            entry = {i.id: i for i in self.questionnaires.entry}
            if strat not in entry or entry[strat].type != "single_choice" or not entry[strat].required:
                problems.append(
                    f"randomization.stratify_by: {strat!r} must be a required single_choice item of "
                    "questionnaires.entry"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # --- derived facts, so no other module re-derives them ---------------------------------------------
    @property
    def n_arms(self) -> int:
        """Arms of the allocation: conditions (between) or condition-order × case-set sequences (within)."""
        k = len(self.conditions)
        return k * k if self.design == "within" else k

    @property
    def visual(self) -> str:
        return next(c.id for c in self.conditions if c.id != self.baseline)

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
        return tuple(item.options or ())

    def items(self) -> dict[str, Item]:
        return {i.id: i for items in self.questionnaires.sections().values() for i in items}


class LoadedProtocol:
    """A validated protocol with its source text, content hash and resolved bundle."""

    def __init__(self, protocol: Protocol, text: str, path: Path | None, bundle: Bundle) -> None:
        self.protocol = protocol
        self.text = text
        self.path = path
        self.bundle = bundle

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def case_ids(self) -> tuple[str, ...]:
        include = self.protocol.cases.include
        if include == "all":
            return tuple(c.case_id for c in self.bundle.manifest.cases)
        return tuple(include)


# --- loading with field paths and line numbers ------------------------------------------------------------
def _line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every field path of a composed YAML document to its 1-based line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            _line_index(value, (*path, key.value), out)
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            _line_index(value, (*path, index), out)
    return out


def format_location(loc: tuple) -> str:
    """('questionnaires', 'post', 2, 'scale', 'points') → 'questionnaires.post[2].scale.points'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problems(error: ValidationError, lines: dict[tuple, int]) -> list[str]:
    problems = []
    for item in error.errors():
        # pydantic inserts union/validator tags ('function-after[...]', 'tuple[...]') into loc: drop them
        loc = tuple(p for p in item["loc"] if isinstance(p, int) or ("[" not in p and "-" not in p))
        message = item["msg"].removeprefix("Value error, ")
        line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
        where = f" (line {line})" if line else ""
        problems.append(f"{format_location(loc) or '(top level)'}{where}: {message}")
    return problems


def parse_protocol(text: str, source: str = "<protocol>") -> Protocol:
    """Validate protocol YAML text (no bundle checks)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProtocolError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ProtocolError(source, ["(top level): must be a mapping of protocol sections"])
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(source, _problems(exc, _line_index(node) if node else {})) from None


def resolve_bundle(protocol: Protocol, base_dir: Path, source: str) -> Bundle:
    """Load the protocol's bundle (relative to the protocol file) and check the cases it names."""
    path = base_dir / protocol.cases.bundle
    try:
        bundle = load_bundle(path)
    except BundleNotFoundError as exc:
        hint = f" — draw the demo bundle with `skingen-study demo-bundle {_shown(path)}`"
        raise ProtocolError(source, [f"cases.bundle: {exc}{hint if protocol.cases.demo else ''}"]) from None
    except BundleError as exc:
        raise ProtocolError(source, [f"cases.bundle: {exc}"]) from None
    known = {c.case_id for c in bundle.manifest.cases}
    problems = []
    if protocol.cases.include != "all":
        for index, case_id in enumerate(protocol.cases.include):
            if case_id not in known:
                problems.append(f"cases.include[{index}]: case {case_id!r} is not in the bundle")
    n_cases = len(known) if protocol.cases.include == "all" else len(protocol.cases.include)
    if protocol.design == "within" and n_cases < len(protocol.conditions):
        problems.append(f"cases: a within design needs at least {len(protocol.conditions)} cases")
    if problems:
        raise ProtocolError(source, problems)
    return bundle


def _shown(path: Path) -> str:
    """``path`` as the user would type it here: relative to the working directory when inside it."""
    path = path.resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def load_protocol(path: str | Path) -> LoadedProtocol:
    """Read, validate and resolve a protocol file, or raise one :class:`ProtocolError` naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError(str(path), [f"cannot read the file: {exc}"]) from None
    protocol = parse_protocol(text, str(path))
    bundle = resolve_bundle(protocol, path.resolve().parent, str(path))
    return LoadedProtocol(protocol, text, path, bundle)


def load_stored_protocol(text: str, manifest_json: str, bundle_root: str) -> LoadedProtocol:
    """Rebuild a protocol registered in the database (text and bundle manifest as they were at ``init``).

    Exports and analyses use this, so they read the study as it ran, even if the files have moved since.
    """
    protocol = parse_protocol(text, "<protocol stored in the database>")
    bundle = Bundle(Path(bundle_root), BundleManifest.model_validate_json(manifest_json))
    return LoadedProtocol(protocol, text, None, bundle)
