"""The frozen training configuration: every flag of ``skingen lora train``, checked once, saved with the run.

``RUN/config.json`` holds :meth:`TrainingConfig.to_json` plus the data's content hash. A resumed run must
have the same *training* fields (everything that changes the weights); output-only fields such as how often
to checkpoint or validate may differ. Torch-free.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from skingen.errors import SkinGenError
from skingen.skin_tone import FITZPATRICK_TYPES

CONFIG_FILE = "config.json"
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
MIXED_PRECISION = ("no", "fp16", "bf16")
CAPTIONS = ("metadata", "templates")
FORMATS = ("diffusers", "kohya", "both")
# Fields that may change between an interrupted run and its resumption: they do not touch the weights
# (the data is compared by its content hash, so a moved DATA folder still resumes).
OUTPUT_ONLY = frozenset(
    {
        "data",
        "out",
        "checkpoint_every",
        "checkpoints_total_limit",
        "validate_every",
        "validation_prompts",
        "validation_seeds",
        "validation_skin_tones",
        "validation_inference_steps",
        "dataloader_workers",
        "format",
    }
)


@dataclass(frozen=True)
class TrainingConfig:
    """One training run. Field names are the flags' names (``--grad-accum`` → ``grad_accum``)."""

    data: Path
    sd: str
    out: Path
    rank: int = 4
    alpha: float | None = None  # None: alpha = rank (diffusers' default)
    lr: float = 1e-4
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    steps: int = 1000
    batch_size: int = 1  # per process and micro-batch: one optimizer step sees processes × this × grad_accum
    grad_accum: int = 1
    resolution: int = 512
    center_crop: bool = False
    random_flip: bool = False
    snr_gamma: float | None = None
    noise_offset: float = 0.0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    train_text_encoder: bool = False
    dora: bool = False
    ema_decay: float | None = None  # None: no EMA; else the final weights are the EMA of the LoRA weights
    caption_dropout: float = 0.0
    cache_latents: bool = False
    dataloader_workers: int = 0
    format: str = "diffusers"
    seed: int = 0
    trigger: str | None = None
    captions: str = "metadata"
    taxonomy: Path | None = None  # None: the packaged taxonomy / prompt templates, as generation uses
    templates: Path | None = None
    max_grad_norm: float = 1.0
    checkpoint_every: int = 500
    checkpoints_total_limit: int | None = None
    validate_every: int | None = None
    validation_prompts: tuple[str, ...] = ()
    validation_seeds: tuple[int, ...] = (0,)
    validation_skin_tones: tuple[str, ...] = ("I", "III", "V")
    validation_inference_steps: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "validation_prompts", tuple(self.validation_prompts))
        object.__setattr__(self, "validation_seeds", tuple(int(s) for s in self.validation_seeds))
        object.__setattr__(self, "validation_skin_tones", tuple(self.validation_skin_tones))
        self.check()

    @property
    def lora_alpha(self) -> float:
        return float(self.rank if self.alpha is None else self.alpha)

    def check(self) -> None:
        """Every flag's range and every cross-field rule; each message names the flag."""
        positive = {
            "--rank": self.rank,
            "--steps": self.steps,
            "--batch-size": self.batch_size,
            "--grad-accum": self.grad_accum,
            "--checkpoint-every": self.checkpoint_every,
            "--validation-inference-steps": self.validation_inference_steps,
        }
        for flag, value in positive.items():
            if value < 1:
                raise SkinGenError(f"{flag}: must be ≥ 1, got {value}")
        if self.resolution < 8 or self.resolution % 8:
            raise SkinGenError(f"--resolution: must be a positive multiple of 8, got {self.resolution}")
        if not self.lr > 0:
            raise SkinGenError(f"--lr: must be > 0, got {self.lr}")
        if self.alpha is not None and not self.alpha > 0:
            raise SkinGenError(f"--alpha: must be > 0, got {self.alpha}")
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise SkinGenError(
                f"--lr-scheduler {self.lr_scheduler!r}: expected one of {', '.join(LR_SCHEDULERS)}"
            )
        if not 0 <= self.lr_warmup_steps < self.steps:
            raise SkinGenError(
                f"--lr-warmup-steps: must be in [0, --steps={self.steps}), got {self.lr_warmup_steps}"
            )
        if self.lr_warmup_steps and self.lr_scheduler == "constant":
            raise SkinGenError(
                "--lr-warmup-steps needs a scheduler with warmup, e.g. --lr-scheduler constant_with_warmup"
            )
        if self.mixed_precision not in MIXED_PRECISION:
            raise SkinGenError(
                f"--mixed-precision {self.mixed_precision!r}: expected one of {', '.join(MIXED_PRECISION)}"
            )
        if self.snr_gamma is not None and not self.snr_gamma > 0:
            raise SkinGenError(f"--snr-gamma: must be > 0 (5.0 is the paper's choice), got {self.snr_gamma}")
        if self.noise_offset < 0:
            raise SkinGenError(f"--noise-offset: must be ≥ 0, got {self.noise_offset}")
        if self.captions not in CAPTIONS:
            raise SkinGenError(f"--captions {self.captions!r}: expected one of {', '.join(CAPTIONS)}")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise SkinGenError(f"--checkpoints-total-limit: must be ≥ 1, got {self.checkpoints_total_limit}")
        if self.validate_every is not None and self.validate_every < 1:
            raise SkinGenError(f"--validate-every: must be ≥ 1, got {self.validate_every}")
        if self.validate_every is not None and not self.validation_seeds:
            raise SkinGenError("--validation-seeds: at least one seed is needed with --validate-every")
        if self.validation_prompts and self.validate_every is None:
            raise SkinGenError("--validation-prompts is only used with --validate-every K")
        for tone in self.validation_skin_tones:
            if tone not in FITZPATRICK_TYPES:
                raise SkinGenError(
                    f"--validation-skin-tones: {tone!r} is not a Fitzpatrick type ({'/'.join(FITZPATRICK_TYPES)})"
                )
        if not 0 <= self.caption_dropout < 1:
            raise SkinGenError(f"--caption-dropout: a probability in [0, 1), got {self.caption_dropout}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise SkinGenError(f"--ema-decay: must be in (0, 1), e.g. 0.999, got {self.ema_decay}")
        if self.cache_latents and not self.center_crop:
            raise SkinGenError(
                "--cache-latents needs --center-crop: a random crop would be encoded once and then be the same "
                "crop every epoch (--random-flip is fine: both flips are cached)"
            )
        if self.dataloader_workers < 0:
            raise SkinGenError(f"--dataloader-workers: must be ≥ 0, got {self.dataloader_workers}")
        if self.format not in FORMATS:
            raise SkinGenError(f"--format {self.format!r}: expected one of {', '.join(FORMATS)}")
        if self.dora and self.format != "diffusers":
            raise SkinGenError(
                f"--format {self.format} with --dora: the kohya file has no agreed layout for DoRA's magnitudes; "
                "use --format diffusers"
            )
        if self.trigger is not None and not self.trigger.strip():
            raise SkinGenError("--trigger: must not be empty")

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.update(data=str(self.data), out=str(self.out))
        for name in ("taxonomy", "templates"):
            data[name] = None if data[name] is None else str(data[name])
        data["validation_prompts"] = list(self.validation_prompts)
        data["validation_seeds"] = list(self.validation_seeds)
        data["validation_skin_tones"] = list(self.validation_skin_tones)
        return data

    def training_fields(self) -> dict[str, object]:
        """The fields that determine the weights (a resumed run must match them)."""
        return {k: v for k, v in self.to_dict().items() if k not in OUTPUT_ONLY}


def differences(saved: dict[str, object], config: TrainingConfig) -> list[str]:
    """``--flag: saved → now`` for each training field that differs from a saved ``config.json``."""
    now = config.training_fields()
    known = {f.name for f in fields(TrainingConfig)}
    return [
        f"--{name.replace('_', '-')}: {saved.get(name)!r} → {value!r}"
        for name, value in now.items()
        if name in known and saved.get(name) != value
    ]


def write_config(config: TrainingConfig, data_hash: str) -> Path:
    path = config.out / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config": config.to_dict(), "data_sha256": data_hash}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def read_config(run: Path) -> dict[str, object]:
    path = Path(run) / CONFIG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SkinGenError(
            f"--resume: {path} not readable ({exc.strerror}); is {run} a training run?"
        ) from exc
    except json.JSONDecodeError as exc:
        raise SkinGenError(f"--resume: {path} is not valid JSON ({exc})") from exc
