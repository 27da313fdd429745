"""``GRID.yaml``: the base settings, the grid over them and the metric that picks the best setting; checked once.

Every error names its field path (``grid.rank[1]: ...``, ``grid: unknown key 'ranks'``) and all of them come
back as one :class:`~skingen.errors.SkinGenError`.

A grid has two kinds of axes. *Training* settings (:data:`TRAINING_KEYS`) need a LoRA of their own:
:meth:`GridSpec.cells` expands their cartesian product into :class:`Cell` s, each trained once per training
seed (``base.training_seeds``, so the spread across seeds is measured, not assumed away) and each with a stable
id derived from its settings (same settings → same folder, so a rerun finds its finished and interrupted runs).
*Generation* settings (:data:`GENERATION_KEYS`: LoRA scale, guidance) apply to every trained LoRA without
training again: :meth:`GridSpec.variants`. Every grid also generates with the base model alone
(:meth:`GridSpec.baseline_variants`), the row a LoRA has to beat. Torch-free.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from formats.errors import FormatError
from skingen.diagnosis.options import DiagnoserSpec
from skingen.errors import SkinGenError
from skingen.evaluation.evaluator import EvaluationSettings
from skingen.generation import DEFAULT_GUIDANCE, DEFAULT_STEPS
from skingen.skin_tone import FITZPATRICK_TYPES, skin_tone_group
from skingen.training.config import TrainingConfig

# metric → the direction that is better (the default of ``metric.direction``); ``fd``, ``fd_inf`` and ``kd`` are
# the distances in ``base.features``' space (``fd_clip``… in each run's metrics.json, see
# skingen.evaluation.names)
METRIC_DIRECTIONS = {
    "fd": "minimize",
    "fd_inf": "minimize",
    "kd": "minimize",
    "precision": "maximize",
    "recall": "maximize",
    "density": "maximize",
    "coverage": "maximize",
    "clip_score": "maximize",
    "diversity": "maximize",
    "closed_loop_accuracy": "maximize",
}
TRAINING_KEYS = ("rank", "alpha", "lr", "steps", "train_text_encoder", "subset")
GENERATION_KEYS = ("lora_scale", "guidance")
# Images per condition × skin-tone cell: with the default three skin tones, 102 per condition, a size at which
# distances between image sets stop being dominated by their small-sample bias (docs/pipeline.md).
DEFAULT_IMAGES_PER_CELL = 34
# TrainingConfig fields the grid sets itself (per run) or derives (out, data)
_OWNED = frozenset({"data", "sd", "out", "rank", "alpha", "lr", "steps", "train_text_encoder", "seed",
                    "trigger", "resolution"})  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSubset(_Strict):
    """A named part of the training split: some conditions and/or skin tones, optionally a fraction of it."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    conditions: tuple[str, ...] | None = None
    skin_tones: tuple[str, ...] | None = None  # Fitzpatrick types (I–VI) or groups (I-II, III-IV, V-VI)
    fraction: float | None = Field(default=None, gt=0, le=1)

    @field_validator("skin_tones")
    @classmethod
    def _tones(cls, tones: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for tone in tones or ():
            if tone not in FITZPATRICK_TYPES:
                skin_tone_group(tone)  # raises ValueError naming the accepted values
        return tones


_EVALUATION = EvaluationSettings()


class EvaluationSet(_Strict):
    """The fixed images every run generates: conditions × skin tones × images per cell (seeds seed, seed+1, …)."""

    conditions: tuple[str, ...] = Field(min_length=1)
    skin_tones: tuple[Literal["I", "II", "III", "IV", "V", "VI"], ...] = ("I", "III", "V")
    images_per_cell: int = Field(default=DEFAULT_IMAGES_PER_CELL, ge=2)  # half selects, half confirms
    seed: int = 0
    inference_steps: int = Field(default=DEFAULT_STEPS, ge=1)
    guidance: float = Field(default=DEFAULT_GUIDANCE, ge=0)
    batch_size: int = Field(default=4, ge=1)
    # evaluation settings: skingen evaluate's flags, with its defaults
    k: int = Field(default=_EVALUATION.k, ge=1)
    jackknife_groups: int = Field(default=_EVALUATION.jackknife_groups, ge=2)
    kd_max_samples: int = Field(default=_EVALUATION.kd_max_samples, ge=0)
    equal_n_draws: int = Field(default=_EVALUATION.equal_n_draws, ge=0)
    bootstrap: int = Field(default=_EVALUATION.bootstrap, ge=0)
    confidence: float = Field(default=_EVALUATION.confidence, gt=0, lt=1)
    knn_max_samples: int = Field(default=_EVALUATION.knn_max_samples, ge=0)


class GridBase(_Strict):
    data: Path
    sd: str
    features: Path
    diagnoser: str | None = None  # a closed-loop judge spec, as `skingen evaluate --diagnoser` takes
    steps: int = Field(default=1000, ge=1)
    seed: int = 0
    training_seeds: int = Field(default=3, ge=1)  # each cell trained with seeds seed, seed + 1, …
    lora_scale: float = Field(default=1.0, gt=0)
    trigger: str | None = None
    resolution: int = Field(default=512, ge=8, multiple_of=8)
    rank: int = Field(default=4, ge=1)
    alpha: float | None = Field(default=None, gt=0)
    lr: float = Field(default=1e-4, gt=0)
    train_text_encoder: bool = False
    training: dict[str, Any] = {}  # any other `skingen lora train` option (batch_size, checkpoint_every, …)
    evaluation: EvaluationSet
    device: str | None = None

    @field_validator("training")
    @classmethod
    def _training(cls, options: dict[str, Any]) -> dict[str, Any]:
        known = set(TrainingConfig.__dataclass_fields__) - _OWNED
        for key in options:
            if key in _OWNED:
                raise ValueError(f"{key!r} is set in base or grid, not under training")
            if key not in known:
                raise ValueError(
                    f"unknown key {key!r} (a `skingen lora train` option: {', '.join(sorted(known))})"
                )
        return options

    @field_validator("diagnoser")
    @classmethod
    def _judge_spec(cls, value: str | None) -> str | None:
        if value is not None:
            DiagnoserSpec.parse(value, "base.diagnoser")  # the same backends as every command's judge
        return value


class Grid(_Strict):
    """The values each setting takes; settings not listed keep their base value (``guidance``:
    ``base.evaluation.guidance``)."""

    rank: tuple[Annotated[int, Field(ge=1)], ...] | None = Field(default=None, min_length=1)
    alpha: tuple[Annotated[float, Field(gt=0)] | None, ...] | None = Field(default=None, min_length=1)
    lr: tuple[Annotated[float, Field(gt=0)], ...] | None = Field(default=None, min_length=1)
    steps: tuple[Annotated[int, Field(ge=1)], ...] | None = Field(default=None, min_length=1)
    train_text_encoder: tuple[bool, ...] | None = Field(default=None, min_length=1)
    subset: tuple[DataSubset, ...] | None = Field(default=None, min_length=1)
    lora_scale: tuple[Annotated[float, Field(gt=0)], ...] | None = Field(default=None, min_length=1)
    guidance: tuple[Annotated[float, Field(ge=0)], ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Grid:
        for key in (*TRAINING_KEYS, *GENERATION_KEYS):
            values = getattr(self, key)
            if values is None:
                continue
            names = [v.name for v in values] if key == "subset" else list(values)
            if len(set(names)) != len(names):
                raise ValueError(f"{key}: values must be distinct, got {names}")
        return self


class Metric(_Strict):
    name: Literal[tuple(METRIC_DIRECTIONS)]  # type: ignore[valid-type]
    direction: Literal["minimize", "maximize"] | None = None

    @property
    def better(self) -> str:
        return self.direction or METRIC_DIRECTIONS[self.name]


@dataclass(frozen=True)
class Cell:
    """One point of the training grid: a LoRA trained once per training seed."""

    id: str
    rank: int
    alpha: float | None
    lr: float
    steps: int
    train_text_encoder: bool
    subset: DataSubset | None

    def settings(self) -> dict[str, object]:
        """The varied settings as flat columns (``subset`` by name)."""
        return {
            "rank": self.rank,
            "alpha": self.alpha,
            "lr": self.lr,
            "steps": self.steps,
            "train_text_encoder": self.train_text_encoder,
            "subset": self.subset.name if self.subset else "all",
        }


@dataclass(frozen=True)
class Variant:
    """How a set of images is generated from one model: the LoRA's scale (None: the base model, no LoRA) and
    the guidance scale."""

    lora_scale: float | None
    guidance: float

    @property
    def name(self) -> str:
        """The folder name, e.g. ``scale0.8_guidance7.5``; ``guidance7.5`` for the base model."""
        scale = "" if self.lora_scale is None else f"scale{self.lora_scale:g}_"
        return f"{scale}guidance{self.guidance:g}"


@dataclass(frozen=True)
class Setting:
    """What the grid compares: a cell generated with a variant, or the base model (``cell`` None)."""

    cell: Cell | None
    variant: Variant

    @property
    def id(self) -> str:
        return f"{self.cell.id if self.cell else 'base-model'}@{self.variant.name}"

    def settings(self) -> dict[str, object]:
        """Flat columns: the training settings (empty for the base model) and the generation settings."""
        training = self.cell.settings() if self.cell else dict.fromkeys(TRAINING_KEYS)
        return {**training, "lora_scale": self.variant.lora_scale, "guidance": self.variant.guidance}


class GridSpec(_Strict):
    base: GridBase
    grid: Grid
    metric: Metric = Metric(name="fd_inf")

    @property
    def varied(self) -> tuple[str, ...]:
        """The settings the grid varies, training settings first."""
        return tuple(k for k in (*TRAINING_KEYS, *GENERATION_KEYS) if getattr(self.grid, k) is not None)

    @property
    def training_seeds(self) -> tuple[int, ...]:
        return tuple(range(self.base.seed, self.base.seed + self.base.training_seeds))

    def variants(self) -> list[Variant]:
        """The generation settings every trained LoRA is evaluated at."""
        scales = self.grid.lora_scale or (self.base.lora_scale,)
        guidances = self.grid.guidance or (self.base.evaluation.guidance,)
        return [Variant(s, g) for s, g in itertools.product(scales, guidances)]

    def baseline_variants(self) -> list[Variant]:
        """The base model at every guidance value of the grid."""
        return [Variant(None, g) for g in self.grid.guidance or (self.base.evaluation.guidance,)]

    def settings(self) -> list[Setting]:
        """Every setting the grid compares: the LoRA settings, then the base model's."""
        trained = [Setting(c, v) for c in self.cells() for v in self.variants()]
        return trained + [Setting(None, v) for v in self.baseline_variants()]

    def cells(self) -> list[Cell]:
        base = self.base
        axes = {
            "rank": self.grid.rank or (base.rank,),
            "alpha": self.grid.alpha or (base.alpha,),
            "lr": self.grid.lr or (base.lr,),
            "steps": self.grid.steps or (base.steps,),
            "train_text_encoder": self.grid.train_text_encoder or (base.train_text_encoder,),
            "subset": self.grid.subset or (None,),
        }
        varied = tuple(k for k in TRAINING_KEYS if getattr(self.grid, k) is not None)
        cells = []
        for values in itertools.product(*axes.values()):
            point = dict(zip(axes, values, strict=True))
            cells.append(Cell(id=run_id(point, varied), **point))
        return cells


def run_id(point: dict[str, object], varied: tuple[str, ...]) -> str:
    """Readable (the varied settings) and unique (a hash of all of them), e.g. ``rank4_lr0.001-3f2a9c1e``."""
    plain = {k: (v.model_dump() if isinstance(v, BaseModel) else v) for k, v in point.items()}
    digest = hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:8]
    parts = [f"{_SHORT.get(key, key)}{_shown(point[key])}" for key in varied]
    label = re.sub(r"[^A-Za-z0-9_.+-]", "_", "_".join(parts)) or "run"
    return f"{label}-{digest}"


_SHORT = {"train_text_encoder": "te"}


def _shown(value: object) -> str:
    if isinstance(value, DataSubset):
        return value.name
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _path(loc: tuple[object, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _message(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{_path(loc[:-1])}: unknown key {loc[-1]!r}"
    if error["type"] == "missing":
        return f"{_path(loc[:-1])}: missing key {loc[-1]!r}"
    text = str(error["msg"]).removeprefix("Value error, ")
    return f"{_path(loc)}: {text}"


def parse_grid(data: object, source: str = "GRID.yaml") -> GridSpec:
    """A grid from already-loaded YAML; every problem in one message naming its field path."""
    if not isinstance(data, dict):
        raise SkinGenError(f"{source}: expected a mapping with base, grid and metric")
    try:
        spec = GridSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_message(e) for e in exc.errors())
        raise SkinGenError(f"{source}: {problems}") from None
    for cell in spec.cells():  # the combined training settings, checked by the training config itself
        try:
            training_config(spec, cell, spec.base.seed, Path("."))
        except FormatError as exc:
            raise SkinGenError(f"{source}: run {cell.id}: {exc}") from None
    return spec


def load_grid(path: str | Path) -> GridSpec:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SkinGenError(f"{path}: not readable ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise SkinGenError(f"{path}: not valid YAML ({exc})") from None
    spec = parse_grid(data, str(path))
    # relative paths in the YAML are relative to the YAML file
    base = spec.base
    updates = {
        name: (path.parent / value)
        for name, value in (("data", base.data), ("features", base.features))
        if not value.is_absolute()
    }
    return spec.model_copy(update={"base": base.model_copy(update=updates)}) if updates else spec


def training_config(
    spec: GridSpec, run: Cell, seed: int, out: Path, data: Path | None = None
) -> TrainingConfig:
    """One training run's ``skingen lora train`` settings: base, its ``training`` options, the grid point, the
    training seed."""
    base = spec.base
    return TrainingConfig(
        **base.training,
        data=data or base.data,
        sd=base.sd,
        out=out,
        rank=run.rank,
        alpha=run.alpha,
        lr=run.lr,
        steps=run.steps,
        train_text_encoder=run.train_text_encoder,
        seed=seed,
        trigger=base.trigger,
        resolution=base.resolution,
    )
