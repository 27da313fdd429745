"""The image sets, judge and metric settings of ``skingen evaluate`` and ``bundle build --evaluate``, defined
once for both."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from skingen.dataset import SPLITS
from skingen.diagnosis.options import add_judge_option
from skingen.evaluation.evaluator import EvaluationSettings
from skingen.evaluation.inception import InceptionFeatures
from skingen.evaluation.inputs import ImageSet, read_real


@dataclass(frozen=True)
class RealImages:
    """``--real`` (a prepared set or an image folder), the split of it used, and clean-fid's Inception."""

    path: Path
    split: str | None
    inception_weights: Path | None

    def read(self) -> ImageSet:
        """The images, labelled and checked (errors name ``--real``)."""
        return read_real(self.path, split=self.split)

    def inception(self, device: str | None, batch_size: int = 32) -> InceptionFeatures | None:
        """clean-fid's Inception network from ``--inception-weights`` (None without the flag)."""
        if self.inception_weights is None:
            return None
        return InceptionFeatures(self.inception_weights, device=device, batch_size=batch_size)


def add_evaluation_inputs(parser: argparse._ActionsContainer, *, required: bool) -> None:
    """The two image sets' sources and the closed loop's diagnoser (``evaluate``, ``bundle build --evaluate``)."""
    parser.add_argument(
        "--real",
        required=required,
        type=Path,
        metavar="DIR|DATA",
        help="prepared set (metadata.csv) or image folder",
    )
    parser.add_argument(
        "--real-split", choices=SPLITS, help="only this split of a prepared --real set (default: all)"
    )
    parser.add_argument(
        "--inception-weights",
        type=Path,
        metavar="PATH",
        help="clean-fid's TorchScript inception-2015-12-05.pt: also the standard Inception FID/KID "
        "(`fid`, `kid`), as clean-fid computes them (nothing is downloaded)",
    )
    if required:  # `skingen evaluate`; `bundle build` evaluates its own references with its --features
        parser.add_argument(
            "--generated",
            required=True,
            type=Path,
            metavar="DIR",
            help="generated images with provenance JSON beside them, or a bundle (its references)",
        )
        parser.add_argument(
            "--features",
            required=True,
            type=Path,
            metavar="PATH",
            help="local image-encoder directory: CLIP (also gives the CLIP score) or any transformers image "
            "model",
        )
    add_judge_option(
        parser,
        default="default: no closed loop" if required else "default: the model that diagnosed the cases",
    )


def add_evaluation_settings(parser: argparse._ActionsContainer) -> None:
    defaults = EvaluationSettings()
    parser.add_argument(
        "--jackknife-groups",
        type=int,
        default=defaults.jackknife_groups,
        help="blocks per side of the FD∞ and KD jackknife intervals (default %(default)s)",
    )
    parser.add_argument(
        "--kd-max-samples",
        type=int,
        default=defaults.kd_max_samples,
        metavar="N",
        help="KD (quadratic in the images) on a seeded subsample of at most N per side (default %(default)s; "
        "0: all)",
    )
    parser.add_argument(
        "--equal-n-draws",
        type=int,
        default=defaults.equal_n_draws,
        help="subsamples per skin-tone group for FD at the smallest group's n (default %(default)s; 0: none)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=defaults.bootstrap,
        help="bootstrap replicates of the per-image metrics (default %(default)s; 0: no intervals)",
    )
    parser.add_argument(
        "--confidence", type=float, default=defaults.confidence, help="interval level (default %(default)s)"
    )
    parser.add_argument(
        "--knn-max-samples",
        type=int,
        default=defaults.knn_max_samples,
        metavar="N",
        help="precision/recall/density/coverage and diversity on a seeded subsample of at most N images per "
        "side and group (they are quadratic in the images; default %(default)s, as Naeem et al. 2020; 0: all)",
    )


def real_images(args: argparse.Namespace) -> RealImages:
    return RealImages(args.real, args.real_split, args.inception_weights)


def evaluation_settings(
    args: argparse.Namespace, *, seed: int, k: int = EvaluationSettings.k
) -> EvaluationSettings:
    """The checked settings (every range error names its flag)."""
    settings = EvaluationSettings(
        k=k,
        jackknife_groups=args.jackknife_groups,
        kd_max_samples=args.kd_max_samples,
        equal_n_draws=args.equal_n_draws,
        bootstrap=args.bootstrap,
        confidence=args.confidence,
        seed=seed,
        knn_max_samples=args.knn_max_samples,
    )
    settings.check()
    return settings
