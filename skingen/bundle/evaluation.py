"""``skingen bundle build --evaluate``: the bundle's references evaluated before the bundle is swapped in.

Each reference image gets its closed-loop check (what a diagnoser sees in it) in the manifest, and the
bundle gets its metrics (``skingen evaluate`` of the references against a real set) as ``evaluation/`` beside
the manifest plus the headline numbers in the manifest. The study then carries the per-image check into the
rating export, so the analysis can ask whether dermatologists agree with the automatic check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from formats.bundle import BundleEvaluation, Case, ClosedLoopCheck
from skingen.diagnosis.base import Diagnoser
from skingen.distributed import ProcessShare
from skingen.evaluation.evaluator import EvaluationSettings, check_inputs, evaluate_detailed, headline_of
from skingen.evaluation.inputs import ImageSet, reference_images
from skingen.evaluation.report import METRICS_FILE, REPORT_FILE, write_report

if TYPE_CHECKING:
    from skingen.evaluation.features import FeatureExtractor
    from skingen.evaluation.inception import InceptionFeatures

EVALUATION_DIR = "evaluation"
FLAGS = ("--real", "the bundle's references")


@dataclass(frozen=True)
class Evaluated:
    """The cases with each reference's closed-loop check filled in, and the bundle's metrics record."""

    cases: list[Case]
    record: BundleEvaluation


@dataclass(frozen=True)
class BundleEvaluator:
    """Evaluates a bundle's references in its staging folder (every process of a share calls it alike)."""

    real: ImageSet
    extractor: FeatureExtractor
    diagnoser: Diagnoser
    settings: EvaluationSettings
    inception: InceptionFeatures | None = None

    def __call__(
        self,
        cases: list[Case],
        root: Path,
        default_skin_tone: str | None,
        *,
        share: ProcessShare | None = None,
        progress: bool = True,
    ) -> Evaluated | None:
        """Evaluate the references of ``cases`` (paths relative to ``root``); ``None`` on non-main processes."""
        # 1. The references as an image set, checked as `skingen evaluate` checks its inputs
        generated = ImageSet(root, "bundle", reference_images(root, cases, default_skin_tone))
        check_inputs(self.real, generated, self.settings, flags=FLAGS)
        # 2. Every metric, and the diagnoser's verdict on each image
        evaluation = evaluate_detailed(
            self.real,
            generated,
            self.extractor,
            self.settings,
            diagnoser=self.diagnoser,
            inception=self.inception,
            share=share,
            progress=progress,
        )
        if evaluation is None:
            return None
        # 3. metrics.json + report.html into the bundle (the references named as the bundle itself, not the
        # staging folder they were read from), the verdicts onto the references
        inputs = {**evaluation.results["inputs"], "generated": {"path": ".", "kind": "bundle"}}
        write_report(root / EVALUATION_DIR, {**evaluation.results, "inputs": inputs})
        verdicts = iter(evaluation.closed_loop.diagnosed)
        checked = [
            case.model_copy(
                update={
                    "references": tuple(
                        reference.model_copy(
                            update={"closed_loop": self._check(reference.skin_condition, next(verdicts))}
                        )
                        for reference in case.references
                    )
                }
            )
            for case in cases
        ]
        return Evaluated(checked, self._record(evaluation.results))

    def _check(self, intended: str, diagnosed: str) -> ClosedLoopCheck:
        return ClosedLoopCheck(
            diagnoser=self.diagnoser.model_id, diagnosed=diagnosed, correct=diagnosed == intended
        )

    def _record(self, results: dict[str, object]) -> BundleEvaluation:
        def headline(entry: dict[str, object]) -> dict[str, float | None]:
            return {
                key: None if entry.get(key) is None else float(entry[key]) for key in headline_of(results)
            }

        return BundleEvaluation(
            metrics=f"{EVALUATION_DIR}/{METRICS_FILE}",
            report=f"{EVALUATION_DIR}/{REPORT_FILE}",
            real=str(self.real.root),
            features=str(self.extractor.path),
            diagnoser=self.diagnoser.model_id,
            headline=headline(results),
            by_skin_tone={group: headline(entry) for group, entry in results["by_skin_tone"].items()},
        )
