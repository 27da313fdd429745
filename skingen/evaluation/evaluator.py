"""``skingen evaluate``: real vs generated images → every metric, globally and per skin-tone group.

:func:`evaluate` reads as its steps: check inputs, embed both sets once, CLIP-score each image against its
prompt, run the closed loop, then compute the metrics for the whole set and for each Fitzpatrick group and
type from those features. :func:`metrics_from_features` is the part after embedding (the benchmark times it
on random features). Torch is imported when the metrics are computed, not at import.

Under ``accelerate launch`` (a :class:`~skingen.distributed.ProcessShare` of several processes) the
per-image work is split: the images are cut into the extractor's batches (one image each for the closed
loop), every process embeds (and diagnoses) a strided share of those batches, and the results are gathered
back in the images' order on every process. A batch holds the same images however many processes there are,
so the features are the ones a single process computes. Only the main process computes the set metrics.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from tqdm.auto import tqdm

from skingen.diagnosis.base import Diagnoser
from skingen.distributed import ProcessShare, raise_failures, unshard
from skingen.errors import SkinGenError
from skingen.evaluation.closed_loop import ClosedLoop, run_closed_loop
from skingen.evaluation.groups import Subset, gaps, group_subsets, type_subsets
from skingen.evaluation.inputs import EvalImage, ImageSet

if TYPE_CHECKING:
    import torch

    from skingen.evaluation.features import FeatureExtractor

T = TypeVar("T")
R = TypeVar("R")
SCHEMA_VERSION = 1
HEADLINE = (
    "fid",
    "kid",
    "kid_std",
    "precision",
    "recall",
    "density",
    "coverage",
    "clip_score",
    "diversity",
    "closed_loop_accuracy",
)


@dataclass(frozen=True)
class EvaluationSettings:
    """How the metrics are computed; stored in ``metrics.json`` as ``settings``."""

    k: int = 5
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    bootstrap: int = 1000
    fid_bootstrap: int = 50
    confidence: float = 0.95
    seed: int = 0
    knn_max_samples: int = 10_000

    def check(self) -> None:
        if self.knn_max_samples < 0:
            raise SkinGenError(f"--knn-max-samples must be ≥ 0 (0: no cap), got {self.knn_max_samples}")
        for name in ("k", "kid_subsets", "kid_subset_size"):
            if getattr(self, name) < 1:
                raise SkinGenError(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(self, name)}")
        if self.kid_subset_size < 2:
            raise SkinGenError(f"--kid-subset-size must be ≥ 2 (KID is unbiased), got {self.kid_subset_size}")
        for name in ("bootstrap", "fid_bootstrap"):
            if getattr(self, name) < 0:
                raise SkinGenError(f"--{name.replace('_', '-')} must be ≥ 0, got {getattr(self, name)}")
        if not 0 < self.confidence < 1:
            raise SkinGenError(f"--confidence must be between 0 and 1, got {self.confidence}")


@dataclass(frozen=True)
class Embedded:
    """Both sets in feature space, plus each image's CLIP score against its prompt (NaN: no prompt)."""

    real: torch.Tensor
    generated: torch.Tensor
    clip_real: np.ndarray | None = None
    clip_generated: np.ndarray | None = None


def check_inputs(
    real: ImageSet,
    generated: ImageSet,
    settings: EvaluationSettings,
    *,
    flags: tuple[str, str] = ("--real", "--generated"),
) -> None:
    """Settings and set sizes; ``flags`` name the two sets in messages as the calling command calls them."""
    settings.check()
    for flag, images in zip(flags, (real, generated), strict=True):
        if len(images) < 2:
            raise SkinGenError(
                f"{flag}: {images.root} has {len(images)} image; FID needs at least 2 per side"
            )


def evaluate(
    real: ImageSet,
    generated: ImageSet,
    extractor: FeatureExtractor,
    settings: EvaluationSettings,
    *,
    diagnoser: Diagnoser | None = None,
    progress: bool = True,
    share: ProcessShare | None = None,
) -> dict[str, object] | None:
    """All metrics of ``generated`` against ``real``; the dictionary ``metrics.json`` holds.

    With ``share``, this process does its share of the per-image work (every process of the share must call
    this with the same arguments); the main process returns the metrics, the others ``None``.
    """
    evaluation = evaluate_detailed(
        real, generated, extractor, settings, diagnoser=diagnoser, share=share, progress=progress
    )
    return None if evaluation is None else evaluation.results


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` computes, with the per-image inputs kept (``skingen lora grid`` bootstraps them).

    ``per_image``: the whole set's per-image values behind the means — ``precision``, ``density``,
    ``diversity`` per generated image and ``recall``, ``coverage`` per real image, in the sets' order, NaN for
    images outside the k-NN sample (or all NaN when the metric was not computed).
    """

    results: dict[str, object]
    embedded: Embedded
    closed_loop: ClosedLoop | None
    per_image: dict[str, np.ndarray]


def evaluate_detailed(
    real: ImageSet,
    generated: ImageSet,
    extractor: FeatureExtractor,
    settings: EvaluationSettings,
    *,
    diagnoser: Diagnoser | None = None,
    share: ProcessShare | None = None,
    progress: bool = True,
) -> Evaluation | None:
    """:func:`evaluate`, also returning the features and the closed-loop verdicts behind the numbers (``None``
    on every process but the main one)."""
    share = share or ProcessShare()
    # 1. Check inputs
    check_inputs(real, generated, settings)
    # 2. Embed both sets once; every distribution metric is computed from these features
    embedded = embed(real, generated, extractor, share=share, progress=progress)
    # 3. Closed loop: the diagnoser re-diagnoses every generated image
    closed_loop = closed_loop_of(diagnoser, generated.images, share, progress=progress) if diagnoser else None
    if not share.is_main_process:
        return None
    # 4. Metrics, globally and per skin-tone group and type
    per_image: dict[str, np.ndarray] = {}
    results = metrics_from_features(
        embedded,
        real.images if real.labelled else None,
        generated.images,
        settings,
        closed_loop=closed_loop,
        per_image=per_image,
    )
    # 5. Where it all came from
    results["inputs"] = {
        "real": {"path": str(real.root), "kind": real.kind, "labelled": real.labelled},
        "generated": {"path": str(generated.root), "kind": generated.kind},
        "features": str(extractor.path),
        "features_model_type": extractor.model_type,
    }
    if not extractor.has_text:
        results["warnings"].append(
            f"--features {extractor.path} has no text tower (not a CLIP model): no CLIP score"
        )
    return Evaluation(results, embedded, closed_loop, per_image)


def embed(
    real: ImageSet,
    generated: ImageSet,
    extractor: FeatureExtractor,
    *,
    share: ProcessShare | None = None,
    progress: bool = False,
) -> Embedded:
    """Features of both sets and, with a CLIP extractor, each image's CLIP score against its prompt; with
    ``share``, each process embeds its share of the batches and every process gets all of them."""
    share = share or ProcessShare()

    def features(images: Sequence[EvalImage], desc: str) -> torch.Tensor:
        batches = across_processes(
            share, [e.path for e in images], extractor.batch_size, extractor, desc=desc, progress=progress
        )
        return _concatenate(batches, extractor)

    real_features = features(real.images, "real features")
    generated_features = features(generated.images, "generated features")
    if not extractor.has_text:
        return Embedded(real_features, generated_features)
    return Embedded(
        real_features,
        generated_features,
        _clip_scores(extractor, real.images, real_features, share),
        _clip_scores(extractor, generated.images, generated_features, share),
    )


def closed_loop_of(
    diagnoser: Diagnoser, images: Sequence[EvalImage], share: ProcessShare, *, progress: bool = True
) -> ClosedLoop:
    """:func:`run_closed_loop` with the images strided over the processes, merged back in order."""
    diagnosed = across_processes(
        share,
        images,
        1,
        lambda one: run_closed_loop(diagnoser, one, progress=False).diagnosed[0],
        desc="closed loop",
        progress=progress,
    )
    return ClosedLoop(diagnoser.model_id, tuple(i.condition for i in images), tuple(diagnosed))


def across_processes(
    share: ProcessShare,
    items: Sequence[T],
    size: int,
    work: Callable[[Sequence[T]], R],
    *,
    desc: str,
    progress: bool = True,
) -> list[R]:
    """``work`` on each run of ``size`` consecutive ``items``, the runs strided over the processes; every
    process gets every run's result, in the items' order. A failure anywhere raises on every process."""
    runs = [items[start : start + size] for start in range(0, len(items), size)]
    mine = share.shard(runs)
    shown = progress and share.is_main_process and len(mine) > 1
    bar = tqdm(mine, desc=desc, unit="batch" if size > 1 else "image", disable=not shown)
    outcome = share.attempt(lambda: [work(run) for run in bar])
    outcomes = share.gather(outcome)  # sent without the exception: this process raises its own, unchanged
    raise_failures([outcome], share.process_index)
    return unshard(raise_failures(outcomes, share.process_index))


def _concatenate(batches: list[torch.Tensor], extractor: FeatureExtractor) -> torch.Tensor:
    import torch

    return torch.cat(batches) if batches else torch.empty(0, extractor.dim)


def _clip_scores(
    extractor: FeatureExtractor, images: Sequence[EvalImage], features: torch.Tensor, share: ProcessShare
) -> np.ndarray:
    from skingen.evaluation.metrics import clip_scores

    scores = np.full(len(images), np.nan)
    index = [i for i, e in enumerate(images) if e.prompt]
    if index:
        prompts = [images[i].prompt for i in index]
        batches = across_processes(
            share, prompts, extractor.batch_size, extractor.text_embeddings, desc="prompts", progress=False
        )
        scores[index] = clip_scores(features[index], _concatenate(batches, extractor))
    return scores


def metrics_from_features(
    embedded: Embedded,
    real: Sequence[EvalImage] | None,
    generated: Sequence[EvalImage],
    settings: EvaluationSettings,
    *,
    closed_loop: ClosedLoop | None = None,
    per_image: dict[str, np.ndarray] | None = None,
) -> dict[str, object]:
    """The metrics for the whole set, ``by_skin_tone`` group, ``by_skin_type`` and the ``gaps`` between groups.

    ``real`` are the real images' labels in feature order (None: unlabelled, so no per-group real side). A
    ``per_image`` dictionary is filled with the whole set's per-image values (see :class:`Evaluation`).
    """
    warnings: list[str] = []
    correct = (
        None if closed_loop is None else np.array([np.nan if c is None else c for c in closed_loop.correct])
    )
    everything = Subset("all", list(range(len(embedded.real))), list(range(len(embedded.generated))))

    def compute(subset: Subset, values: dict[str, np.ndarray] | None = None) -> dict[str, object]:
        return _subset_metrics(embedded, generated, subset, settings, correct, warnings, values)

    results: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "feature_dim": int(embedded.real.shape[1]),
        **compute(everything, per_image),
        "closed_loop": None if closed_loop is None else closed_loop.summary(),
        "settings": asdict(settings),
    }
    by_group = {s.name: compute(s) for s in group_subsets(real, generated)}
    results["by_skin_tone"] = by_group
    results["by_skin_type"] = {s.name: compute(s) for s in type_subsets(real, generated, settings.k + 1)}
    results["gaps"] = gaps(by_group, settings.confidence)
    results["summary"] = [gap["text"] for gap in results["gaps"].values()]
    results["warnings"] = warnings
    return results


def _subset_metrics(
    embedded: Embedded,
    generated: Sequence[EvalImage],
    subset: Subset,
    settings: EvaluationSettings,
    correct: np.ndarray | None,
    warnings: list[str],
    per_image: dict[str, np.ndarray] | None = None,
) -> dict[str, object]:
    from skingen.evaluation import metrics

    rng = np.random.default_rng([settings.seed, zlib.crc32(subset.name.encode())])
    boot = {"replicates": settings.bootstrap, "rng": rng, "confidence": settings.confidence}
    fake = embedded.generated[subset.generated]
    real = None if subset.real is None else embedded.real[subset.real]
    out: dict[str, object] = {"n_real": None if real is None else len(real), "n_generated": len(fake)}
    out.update(dict.fromkeys(_SET_METRICS))
    where = "" if subset.name == "all" else f"Fitzpatrick {subset.name}: "
    # distribution metrics need both sides
    if real is not None and min(len(real), len(fake)) >= 2:
        out["fid"] = metrics.fid(real, fake)
        out["fid_ci"] = metrics.bootstrap_statistic(
            lambda r, f: metrics.fid(real[r], fake[f]),
            len(real),
            len(fake),
            replicates=settings.fid_bootstrap,
            rng=rng,
            confidence=settings.confidence,
        )
        out["kid"], out["kid_std"], out["kid_subset_size"] = metrics.kid(
            real, fake, subsets=settings.kid_subsets, subset_size=settings.kid_subset_size, seed=settings.seed
        )
    elif real is not None:
        warnings.append(f"{where}FID/KID need ≥ 2 images per side (real {len(real)}, generated {len(fake)})")
    # the k-NN metrics and diversity are quadratic in the images: on a seeded subsample beyond the cap
    knn_real, knn_fake = (knn_sample(n, settings, subset.name, side) for n, side in
                          ((0 if real is None else len(real), "real"), (len(fake), "generated")))  # fmt: skip
    out["knn_samples"] = {"real": None if real is None else len(knn_real), "generated": len(knn_fake)}
    if max(len(knn_real), len(knn_fake)) < max(0 if real is None else len(real), len(fake)):
        warnings.append(
            f"{where}precision/recall/density/coverage and diversity on a seeded subsample of at most "
            f"{settings.knn_max_samples} images per side (--knn-max-samples)"
        )
    n_real = 0 if real is None else len(real)
    values_of = {  # per image, in the subset's order; NaN outside the k-NN sample or when not computed
        name: np.full(len(fake) if name in _PER_GENERATED else n_real, np.nan)
        for name in ("precision", "density", "diversity", "recall", "coverage")
    }
    if real is not None and min(len(real), len(fake)) > settings.k:
        manifold = metrics.manifold(real[knn_real], fake[knn_fake], settings.k)
        for name in ("precision", "density", "recall", "coverage"):
            values = getattr(manifold, name)
            values_of[name][knn_fake if name in _PER_GENERATED else knn_real] = values
            out[name] = float(values.mean())
            out[f"{name}_ci"] = metrics.bootstrap_ci(values, **boot)
    elif real is not None:
        warnings.append(
            f"{where}precision/recall/density/coverage need > k={settings.k} images per side "
            f"(real {len(real)}, generated {len(fake)})"
        )
    # per generated image
    if embedded.clip_generated is not None:
        _mean_with_ci(out, "clip_score", embedded.clip_generated[subset.generated], boot)
    if embedded.clip_real is not None and subset.real is not None:
        scores = embedded.clip_real[subset.real]
        out["clip_score_real"] = float(np.nanmean(scores)) if not np.isnan(scores).all() else None
    conditions = [generated[subset.generated[i]].condition for i in knn_fake]
    values_of["diversity"][knn_fake] = metrics.diversity(fake[knn_fake], conditions)
    _mean_with_ci(out, "diversity", values_of["diversity"], boot)
    if per_image is not None:
        per_image.update(values_of)
    if correct is not None:
        _mean_with_ci(out, "closed_loop_accuracy", correct[subset.generated], boot)
    return out


def knn_sample(n: int, settings: EvaluationSettings, subset: str, side: str) -> np.ndarray:
    """Indices of the images the k-NN metrics use: all ``n``, or a sorted seeded sample of the cap (its own
    random stream per subset and side, so the other draws do not change with the cap)."""
    if settings.knn_max_samples == 0 or n <= settings.knn_max_samples:
        return np.arange(n)
    rng = np.random.default_rng([settings.seed, zlib.crc32(f"knn:{subset}:{side}".encode())])
    return np.sort(rng.choice(n, settings.knn_max_samples, replace=False))


_PER_GENERATED = (
    "precision",
    "density",
    "diversity",
)  # one value per generated image (recall, coverage: real)

_SET_METRICS = (
    "fid",
    "fid_ci",
    "kid",
    "kid_std",
    "kid_subset_size",
    "precision",
    "precision_ci",
    "recall",
    "recall_ci",
    "density",
    "density_ci",
    "coverage",
    "coverage_ci",
    "clip_score",
    "clip_score_ci",
    "clip_score_real",
    "diversity",
    "diversity_ci",
    "closed_loop_accuracy",
    "closed_loop_accuracy_ci",
)


def _mean_with_ci(out: dict[str, object], key: str, values: np.ndarray, boot: dict[str, object]) -> None:
    """``out[key]`` = mean of the non-NaN per-image ``values`` (None if none), ``out[key_ci]`` its interval."""
    from skingen.evaluation.metrics import bootstrap_ci

    values = np.asarray(values, dtype=float)
    known = values[~np.isnan(values)]
    out[key] = float(known.mean()) if len(known) else None
    out[f"{key}_ci"] = bootstrap_ci(known, **boot)
