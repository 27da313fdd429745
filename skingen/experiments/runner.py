"""``skingen lora grid``: train every cell once per training seed, generate the fixed evaluation set with every
generation variant (and with the base model alone), evaluate each set.

::

    DIR/
      grid.json                                   # the validated grid, as run
      subsets/<name>/metadata.csv                 # a dataset subset (paths point into base.data)
      runs/<cell>/seed<s>/train/                  # `skingen lora train`'s run folder (checkpoints, run.json last)
      runs/<cell>/seed<s>/generated/<variant>/{selection,heldout}/   # PNG + provenance JSON (with labels)
      runs/<cell>/seed<s>/eval/<variant>/{selection,heldout}/        # metrics.json + report.html
      base-model/generated/<variant>/…, base-model/eval/<variant>/…  # the same without a LoRA
      results.csv, results.json, report.html

The evaluation set's seeds are split in two halves of the same prompts: the best setting is *chosen* on the
``selection`` half and *compared* with the base model and the runner-up on the ``heldout`` half, so picking the
best of many settings does not flatter its comparison (:mod:`skingen.experiments.results`).

Each step is skipped when its output is complete (``run.json``; the ``generated`` and ``eval`` folders are
written atomically), and a run killed during training resumes from its newest checkpoint, so rerunning the
same command after a crash finishes the grid. Torch is imported by the steps, not at import.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from formats.atomic import atomic_directory
from formats.taxonomy import Taxonomy
from skingen.dataset import load_dataset, write_metadata
from skingen.errors import SkinGenError
from skingen.evaluation.evaluator import EvaluationSettings
from skingen.evaluation.inputs import read_generated, read_real
from skingen.evaluation.report import METRICS_FILE, write_report
from skingen.experiments.spec import Cell, DataSubset, GridSpec, Variant, training_config
from skingen.prompts import PromptBuilder
from skingen.provenance import ImageLabels, save_image
from skingen.training import checkpoints
from skingen.training.config import CONFIG_FILE, read_config
from skingen.training.runs import RUN_FILE

HALVES = ("selection", "heldout")
BASE_MODEL = "base-model"


@dataclass(frozen=True)
class RunPaths:
    """The folders of one model: a training run (``runs/<cell>/seed<s>``) or the base model."""

    root: Path

    @classmethod
    def of(cls, out: Path, cell: Cell | None, seed: int | None) -> RunPaths:
        return cls(out / BASE_MODEL if cell is None else out / "runs" / cell.id / f"seed{seed}")

    @property
    def train(self) -> Path:
        return self.root / "train"

    def generated(self, variant: Variant) -> Path:
        return self.root / "generated" / variant.name

    def eval(self, variant: Variant) -> Path:
        return self.root / "eval" / variant.name

    def metrics(self, variant: Variant, half: str) -> Path:
        return self.eval(variant) / half / METRICS_FILE


# Our LoRA file (written first, by the save hook) and what accelerate's save_state writes last: the RNG states,
# then registered objects — the EMA with --ema-decay.
_CHECKPOINT_FILES = ("pytorch_lora_weights.safetensors", "random_states_0.pkl")
_EMA_FILE = "custom_checkpoint_0.pkl"


def complete_checkpoints(run: Path) -> list[Path]:
    """The run's checkpoints, after deleting the newest ones that a kill left half-written (oldest first)."""
    found = checkpoints.checkpoints(run)
    names = _CHECKPOINT_FILES
    if (
        found
        and (run / CONFIG_FILE).is_file()
        and read_config(run).get("config", {}).get("ema_decay") is not None
    ):
        names = (*names, _EMA_FILE)
    while found and not all((found[-1] / name).is_file() for name in names):
        shutil.rmtree(found.pop())
    return found


def evaluation_conditions(spec: GridSpec, taxonomy: Taxonomy | None = None) -> list[str]:
    """``base.evaluation.conditions`` as taxonomy ids (names and synonyms resolved)."""
    taxonomy = taxonomy or Taxonomy.load(spec.base.training.get("taxonomy"))
    return [taxonomy.resolve(c, "base.evaluation.conditions") for c in spec.base.evaluation.conditions]


def image_name(condition: str, tone: str, seed: int) -> str:
    """The evaluation set's file name for one image (the contact sheet finds them by it)."""
    return f"{condition}_{tone}_seed{seed}.png"


def generation_seeds(spec: GridSpec) -> dict[str, list[int]]:
    """The evaluation set's image seeds per half: the first half selects, the second confirms."""
    ev = spec.base.evaluation
    seeds = list(range(ev.seed, ev.seed + ev.images_per_cell))
    middle = (len(seeds) + 1) // 2
    return {"selection": seeds[:middle], "heldout": seeds[middle:]}


class GridRunner:
    """Runs a checked :class:`GridSpec` into ``out``; models for evaluation are loaded once, when first needed."""

    def __init__(self, spec: GridSpec, out: str | Path, *, progress: bool = True) -> None:
        self.spec, self.out, self.progress = spec, Path(out), progress
        self.taxonomy = Taxonomy.load(spec.base.training.get("taxonomy"))
        self.prompts = PromptBuilder.load(self.taxonomy, spec.base.training.get("templates"))
        self.conditions = evaluation_conditions(spec, self.taxonomy)
        self._extractor = None
        self._diagnoser = None
        self.trained: list[str] = []  # what this session did, for the summary (and tests)

    def check(self) -> None:
        """Everything checkable before a model loads: the data, its validation split, the subsets."""
        dataset = load_dataset(self.spec.base.data)
        if not dataset.split("validation"):
            raise SkinGenError(f"base.data {self.spec.base.data}: no validation split to evaluate against")
        for subset in self.spec.grid.subset or ():
            self.subset_examples(subset)
        if self.out.exists() and not self.out.is_dir():
            raise SkinGenError(f"--out {self.out} exists and is not a directory")
        saved = self.out / "grid.json"
        if saved.is_file():
            before = json.loads(saved.read_text(encoding="utf-8"))
            if (
                before.get("base", {}).get("data") != str(self.spec.base.data)
                or before.get("base", {}).get("sd") != self.spec.base.sd
            ):
                raise SkinGenError(
                    f"--out {self.out} holds a grid on other data or another base model; choose another --out"
                )

    def __call__(self) -> list[Path]:
        self.check()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "grid.json").write_text(self.spec.model_dump_json(indent=2) + "\n", encoding="utf-8")
        models = [(c, s) for c in self.spec.cells() for s in self.spec.training_seeds] + [(None, None)]
        done = []
        for cell, seed in tqdm(models, desc="grid", unit="model", disable=not self.progress):
            done.append(self.run(cell, seed))
        return done

    # --- one model: a training run, or the base model -------------------------------------------------------

    def run(self, cell: Cell | None, seed: int | None) -> Path:
        paths = RunPaths.of(self.out, cell, seed)
        # 1. Train (skipped when run.json exists; resumed from the newest checkpoint when there is one)
        if cell is not None:
            self.train(cell, seed, paths)
        for variant in self.spec.variants() if cell is not None else self.spec.baseline_variants():
            # 2. Generate the fixed evaluation set, both halves, with this variant
            if not paths.generated(variant).is_dir():
                self.generate(paths, variant, lora=cell is not None)
            # 3. Evaluate each half against the real validation split
            if not all(paths.metrics(variant, half).is_file() for half in HALVES):
                self.evaluate(paths, variant)
        return paths.root

    def train(self, cell: Cell, seed: int, paths: RunPaths) -> None:
        if (paths.train / RUN_FILE).is_file():
            return
        from skingen.training.loop import train  # torch from here on

        data = self.subset_data(cell.subset) if cell.subset else self.spec.base.data
        config = training_config(self.spec, cell, seed, paths.train, data)
        resume = "latest" if complete_checkpoints(paths.train) else None
        if resume is None and paths.train.exists():
            shutil.rmtree(paths.train)  # killed before its first checkpoint: nothing to resume
        # a stale evaluation of an unfinished run cannot exist (both are written after run.json), but be sure
        for stale in (paths.root / "generated", paths.root / "eval"):
            shutil.rmtree(stale, ignore_errors=True)
        train(config, resume=resume, progress=self.progress)
        self.trained.append(f"{cell.id}/seed{seed}")

    def generate(self, paths: RunPaths, variant: Variant, *, lora: bool) -> None:
        from skingen.generation import LoraSpec, ReferenceGenerator

        base, ev = self.spec.base, self.spec.base.evaluation
        loras = [LoraSpec(paths.train, scale=variant.lora_scale)] if lora else []
        generator = ReferenceGenerator.from_pretrained(base.sd, loras=loras, device=base.device, cache=None)
        with atomic_directory(paths.generated(variant), overwrite=True) as staging:
            for half, seeds in generation_seeds(self.spec).items():
                (staging / half).mkdir()
                for condition in self.conditions:
                    for tone in ev.skin_tones:
                        built = self.prompts.build(
                            condition, skin_tone=tone, trigger=base.trigger if lora else None
                        )
                        results = generator(
                            built.prompt, built.negative_prompt, seeds=seeds, steps=ev.inference_steps,
                            guidance=variant.guidance, width=base.resolution, height=base.resolution,
                            batch_size=ev.batch_size,
                        )  # fmt: skip
                        labels = ImageLabels(condition=condition, skin_tone=built.skin_tone)
                        for result in results:
                            png = staging / half / image_name(condition, tone, result.record.seed)
                            save_image(result.image, result.record, png, labels)

    def evaluate(self, paths: RunPaths, variant: Variant) -> None:
        from skingen.evaluation.evaluator import evaluate

        ev = self.spec.base.evaluation
        settings = EvaluationSettings(
            k=ev.k, jackknife_groups=ev.jackknife_groups, kd_max_samples=ev.kd_max_samples,
            equal_n_draws=ev.equal_n_draws, bootstrap=ev.bootstrap, confidence=ev.confidence, seed=self.spec.base.seed,
            knn_max_samples=ev.knn_max_samples,
        )  # fmt: skip
        real = read_real(self.spec.base.data, split="validation")
        with atomic_directory(paths.eval(variant), overwrite=True) as staging:
            for half in HALVES:
                generated = read_generated(paths.generated(variant) / half)
                results = evaluate(
                    real,
                    generated,
                    self.extractor(),
                    settings,
                    diagnoser=self.diagnoser(),
                    progress=self.progress,
                )
                write_report(staging / half, results)

    def extractor(self):
        if self._extractor is None:
            from skingen.evaluation.features import FeatureExtractor

            self._extractor = FeatureExtractor(self.spec.base.features, device=self.spec.base.device)
        return self._extractor

    def diagnoser(self):
        if self._diagnoser is None and self.spec.base.diagnoser:
            from skingen.diagnosis.options import DiagnoserSettings, DiagnoserSpec, build_diagnoser

            self._diagnoser = build_diagnoser(
                DiagnoserSpec.parse(self.spec.base.diagnoser, "base.diagnoser"),
                self.taxonomy,
                DiagnoserSettings(device=self.spec.base.device),
            )
        return self._diagnoser

    # --- dataset subsets ---------------------------------------------------------------------------------

    def subset_examples(self, subset: DataSubset) -> list:
        dataset = load_dataset(self.spec.base.data)
        conditions = (
            None
            if subset.conditions is None
            else {self.taxonomy.resolve(c, f"subset {subset.name}: conditions") for c in subset.conditions}
        )
        tones = set(subset.skin_tones or ())
        kept = [
            e
            for e in dataset.split("train")
            if (conditions is None or e.condition in conditions)
            and (not tones or e.skin_tone in tones or e.skin_tone_group in tones)
        ]
        if subset.fraction is not None:  # a seeded, stable choice: the files with the smallest hashes
            key = f"{self.spec.base.seed}:{subset.name}:"
            kept.sort(key=lambda e: hashlib.sha256((key + e.file).encode()).hexdigest())
            kept = sorted(kept[: max(1, round(subset.fraction * len(kept)))], key=dataset.examples.index)
        if not kept:
            raise SkinGenError(f"grid.subset {subset.name!r}: no training image of base.data is kept")
        return [e.__class__(**{**e.__dict__, "file": str(dataset.path(e).resolve())}) for e in kept]

    def subset_data(self, subset: DataSubset) -> Path:
        """``DIR/subsets/<name>/metadata.csv`` (same bytes each time, so a resumed run sees the same data hash)."""
        with atomic_directory(self.out / "subsets" / subset.name, overwrite=True) as staging:
            write_metadata(staging, self.subset_examples(subset))
        return self.out / "subsets" / subset.name
