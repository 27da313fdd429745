"""``skingen lora grid``: every run of a grid, each train → generate the fixed evaluation set → evaluate.

::

    DIR/
      grid.json                    # the validated grid, as run
      subsets/<name>/metadata.csv  # a dataset subset (paths point into base.data)
      runs/<id>/train/             # `skingen lora train`'s run folder (checkpoints, run.json last)
      runs/<id>/generated/         # the evaluation set: PNG + provenance JSON (with labels)
      runs/<id>/eval/              # metrics.json + report.html (`skingen evaluate`'s), per_image.npz
      results.csv, results.json, report.html

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

from skingen.atomic import atomic_directory
from skingen.dataset import load_dataset, write_metadata
from skingen.errors import SkinGenError
from skingen.evaluation.evaluator import EvaluationSettings
from skingen.evaluation.inputs import read_generated, read_real
from skingen.evaluation.report import METRICS_FILE, write_report
from skingen.experiments.spec import DataSubset, GridSpec, RunSettings, training_config
from skingen.prompts import PromptBuilder
from skingen.provenance import ImageLabels, save_image
from skingen.taxonomy import Taxonomy
from skingen.training import checkpoints
from skingen.training.config import CONFIG_FILE, read_config
from skingen.training.runs import RUN_FILE

PER_IMAGE_FILE = "per_image.npz"


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def generated(self) -> Path:
        return self.root / "generated"

    @property
    def eval(self) -> Path:
        return self.root / "eval"


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
        runs = self.spec.runs()
        done = []
        for run in tqdm(runs, desc="grid", unit="run", disable=not self.progress):
            done.append(self.run(run))
        return done

    # --- one run ---------------------------------------------------------------------------------------

    def run(self, run: RunSettings) -> Path:
        paths = RunPaths(self.out / "runs" / run.id)
        # 1. Train (skipped when run.json exists; resumed from the newest checkpoint when there is one)
        self.train(run, paths)
        # 2. Generate the fixed evaluation set with the run's LoRA
        if not paths.generated.is_dir():
            self.generate(paths)
        # 3. Evaluate against the real validation split
        if not (paths.eval / METRICS_FILE).is_file():
            self.evaluate(paths)
        return paths.root

    def train(self, run: RunSettings, paths: RunPaths) -> None:
        if (paths.train / RUN_FILE).is_file():
            return
        from skingen.training.loop import train  # torch from here on

        data = self.subset_data(run.subset) if run.subset else self.spec.base.data
        config = training_config(self.spec, run, paths.train, data)
        resume = "latest" if complete_checkpoints(paths.train) else None
        if resume is None and paths.train.exists():
            shutil.rmtree(paths.train)  # killed before its first checkpoint: nothing to resume
        # a stale evaluation of an unfinished run cannot exist (both are written after run.json), but be sure
        for stale in (paths.generated, paths.eval):
            shutil.rmtree(stale, ignore_errors=True)
        train(config, resume=resume, progress=self.progress)
        self.trained.append(run.id)

    def generate(self, paths: RunPaths) -> None:
        from skingen.generation import LoraSpec, ReferenceGenerator

        base, ev = self.spec.base, self.spec.base.evaluation
        generator = ReferenceGenerator.from_pretrained(
            base.sd, loras=[LoraSpec(paths.train)], device=base.device, cache=None
        )
        seeds = list(range(ev.seed, ev.seed + ev.images_per_cell))
        with atomic_directory(paths.generated, overwrite=True) as staging:
            for condition in self.conditions:
                for tone in ev.skin_tones:
                    built = self.prompts.build(condition, skin_tone=tone, trigger=base.trigger)
                    results = generator(
                        built.prompt, built.negative_prompt, seeds=seeds, steps=ev.inference_steps,
                        guidance=ev.guidance, width=base.resolution, height=base.resolution,
                        batch_size=ev.batch_size,
                    )  # fmt: skip
                    labels = ImageLabels(condition=condition, skin_tone=built.skin_tone)
                    for result in results:
                        png = staging / image_name(condition, tone, result.record.seed)
                        save_image(result.image, result.record, png, labels)

    def evaluate(self, paths: RunPaths) -> None:
        import numpy as np

        from skingen.evaluation.evaluator import evaluate_detailed

        ev = self.spec.base.evaluation
        settings = EvaluationSettings(
            k=ev.k, jackknife_groups=ev.jackknife_groups, kd_max_samples=ev.kd_max_samples,
            equal_n_draws=ev.equal_n_draws, bootstrap=ev.bootstrap, confidence=ev.confidence, seed=self.spec.base.seed,
            knn_max_samples=ev.knn_max_samples,
        )  # fmt: skip
        real = read_real(self.spec.base.data, split="validation")
        generated = read_generated(paths.generated)
        evaluation = evaluate_detailed(
            real, generated, self.extractor(), settings, diagnoser=self.diagnoser(), progress=self.progress
        )
        write_report(paths.eval, evaluation.results, overwrite=True)
        embedded, loop = evaluation.embedded, evaluation.closed_loop
        nan = np.full(len(generated), np.nan)
        per_image = {
            "names": np.array([image.path.name for image in generated.images]),
            "real": embedded.real.numpy(),
            "generated": embedded.generated.numpy(),
            "clip_score": nan if embedded.clip_generated is None else embedded.clip_generated,
            "closed_loop_accuracy": nan
            if loop is None
            else np.array([np.nan if c is None else c for c in loop.correct]),
            **evaluation.per_image,  # precision, density, diversity (generated); recall, coverage (real)
        }
        np.savez(paths.eval / PER_IMAGE_FILE, **per_image)  # inside eval/: written after metrics.json

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
