"""``skingen evaluate``: real vs generated images → every metric, globally and per skin-tone group.

:func:`evaluate` reads as its steps: check inputs, embed both sets once, CLIP-score each image against its
prompt, run the closed loop, then compute the metrics for the whole set and for each Fitzpatrick group and
type from those features, and measure the skin tone each generated image shows. :func:`metrics_from_features`
is the part after embedding (the benchmark times it on random features). Metric names: :mod:`.names`.
Torch is imported when the metrics are computed, not at import.

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
from skingen.evaluation.names import (
    INCEPTION,
    PER_IMAGE_METRICS,
    distance_keys,
    headline_keys,
    metric_infos,
)
from skingen.evaluation.skin_fidelity import MeasuredTone, measure_tones, skin_tone_fidelity

if TYPE_CHECKING:
    import torch

    from skingen.evaluation.features import FeatureExtractor
    from skingen.evaluation.inception import InceptionFeatures

T = TypeVar("T")
R = TypeVar("R")
SCHEMA_VERSION = 2
# images per side in a group below which the groups' sizes are not compared (nothing to compare at n = 1)
_MIN_GROUP = 2
# largest / smallest group size above which the groups are flagged as differing in size
UNEQUAL_RATIO = 1.25


@dataclass(frozen=True)
class EvaluationSettings:
    """How the metrics are computed; stored in ``metrics.json`` as ``settings``.

    ``jackknife_groups``: blocks per side of the FD/KD jackknife intervals (:mod:`.distances`);
    ``kd_max_samples``: KD (quadratic in the images) on a seeded subsample of at most this many per side
    (0: all); ``equal_n_draws``: subsamples per skin-tone group for ``fd_*_equal_n`` (0: not computed).
    """

    k: int = 5
    jackknife_groups: int = 20
    kd_max_samples: int = 10_000
    equal_n_draws: int = 20
    bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0
    knn_max_samples: int = 10_000

    def check(self) -> None:
        for name in ("knn_max_samples", "kd_max_samples", "equal_n_draws", "bootstrap"):
            if getattr(self, name) < 0:
                raise SkinGenError(f"--{name.replace('_', '-')} must be ≥ 0, got {getattr(self, name)}")
        if self.k < 1:
            raise SkinGenError(f"--k must be ≥ 1, got {self.k}")
        if self.jackknife_groups < 2:
            raise SkinGenError(f"--jackknife-groups must be ≥ 2, got {self.jackknife_groups}")
        if not 0 < self.confidence < 1:
            raise SkinGenError(f"--confidence must be between 0 and 1, got {self.confidence}")


@dataclass(frozen=True)
class Embedded:
    """Both sets in the ``--features`` space (named ``space``), each image's CLIP score against its prompt
    (NaN: no prompt), and with ``--inception-weights`` both sets in clean-fid's Inception space."""

    real: torch.Tensor
    generated: torch.Tensor
    clip_real: np.ndarray | None = None
    clip_generated: np.ndarray | None = None
    space: str = "features"
    inception: tuple[torch.Tensor, torch.Tensor] | None = None

    def spaces(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Feature space name → (real, generated) features, every space a distance is computed in."""
        out = {self.space: (self.real, self.generated)}
        if self.inception is not None:
            out[INCEPTION] = self.inception
        return out


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
                f"{flag}: {images.root} has {len(images)} image; a distance needs at least 2 per side"
            )


def evaluate(
    real: ImageSet,
    generated: ImageSet,
    extractor: FeatureExtractor,
    settings: EvaluationSettings,
    *,
    diagnoser: Diagnoser | None = None,
    inception: InceptionFeatures | None = None,
    progress: bool = True,
    share: ProcessShare | None = None,
) -> dict[str, object] | None:
    """All metrics of ``generated`` against ``real``; the dictionary ``metrics.json`` holds.

    With ``share``, this process does its share of the per-image work (every process of the share must call
    this with the same arguments); the main process returns the metrics, the others ``None``.
    """
    evaluation = evaluate_detailed(
        real, generated, extractor, settings, diagnoser=diagnoser, inception=inception, share=share,
        progress=progress,
    )  # fmt: skip
    return None if evaluation is None else evaluation.results


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` computes, with the per-image inputs kept (``skingen lora grid`` bootstraps them).

    ``per_image``: the whole set's per-image values behind the means — ``precision``, ``density``,
    ``diversity`` per generated image and ``recall``, ``coverage`` per real image, in the sets' order, NaN for
    images outside the k-NN sample (or all NaN when the metric was not computed). ``tones``: each generated
    image's measured skin tone.
    """

    results: dict[str, object]
    embedded: Embedded
    closed_loop: ClosedLoop | None
    per_image: dict[str, np.ndarray]
    tones: list[MeasuredTone]


def evaluate_detailed(
    real: ImageSet,
    generated: ImageSet,
    extractor: FeatureExtractor,
    settings: EvaluationSettings,
    *,
    diagnoser: Diagnoser | None = None,
    inception: InceptionFeatures | None = None,
    share: ProcessShare | None = None,
    progress: bool = True,
) -> Evaluation | None:
    """:func:`evaluate`, also returning the features, the closed-loop verdicts and the measured skin tones
    behind the numbers (``None`` on every process but the main one)."""
    share = share or ProcessShare()
    # 1. Check inputs
    check_inputs(real, generated, settings)
    # 2. Embed both sets once (and in Inception space with --inception-weights); every distribution metric
    # is computed from these features
    embedded = embed(real, generated, extractor, inception=inception, share=share, progress=progress)
    # 3. Closed loop: the diagnoser re-diagnoses every generated image
    closed_loop = closed_loop_of(diagnoser, generated.images, share, progress=progress) if diagnoser else None
    # 4. The skin tone each generated image shows (ITA on its skin-coloured pixels)
    runs = across_processes(
        share, [e.path for e in generated.images], 64, measure_tones, desc="skin tones", progress=progress
    )
    tones = [tone for run in runs for tone in run]
    if not share.is_main_process:
        return None
    # 5. Metrics, globally and per skin-tone group and type
    per_image: dict[str, np.ndarray] = {}
    results = metrics_from_features(
        embedded,
        real.images if real.labelled else None,
        generated.images,
        settings,
        closed_loop=closed_loop,
        tones=tones,
        per_image=per_image,
    )
    # 6. Where it all came from
    results["inputs"] = {
        "real": {"path": str(real.root), "kind": real.kind, "labelled": real.labelled},
        "generated": {"path": str(generated.root), "kind": generated.kind},
        "features": str(extractor.path),
        "features_model_type": extractor.model_type,
        "inception_weights": None if inception is None else str(inception.path),
    }
    if not extractor.has_text:
        _warn(
            results["warnings"], "no_text_tower", "all",
            f"--features {extractor.path} has no text tower (not a CLIP model): no CLIP score",
        )  # fmt: skip
    return Evaluation(results, embedded, closed_loop, per_image, tones)


def embed(
    real: ImageSet,
    generated: ImageSet,
    extractor: FeatureExtractor,
    *,
    inception: InceptionFeatures | None = None,
    share: ProcessShare | None = None,
    progress: bool = False,
) -> Embedded:
    """Features of both sets (also Inception features with ``inception``) and, with a CLIP extractor, each
    image's CLIP score against its prompt; with ``share``, each process embeds its share of the batches and
    every process gets all of them."""
    share = share or ProcessShare()

    def features(
        images: Sequence[EvalImage], encoder: FeatureExtractor | InceptionFeatures, desc: str
    ) -> torch.Tensor:
        batches = across_processes(
            share, [e.path for e in images], encoder.batch_size, encoder, desc=desc, progress=progress
        )
        return _concatenate(batches, encoder)

    real_features = features(real.images, extractor, "real features")
    generated_features = features(generated.images, extractor, "generated features")
    in_inception = None
    if inception is not None:
        in_inception = (
            features(real.images, inception, "real Inception features"),
            features(generated.images, inception, "generated Inception features"),
        )
    clip = (None, None)
    if extractor.has_text:
        clip = (
            _clip_scores(extractor, real.images, real_features, share),
            _clip_scores(extractor, generated.images, generated_features, share),
        )
    return Embedded(real_features, generated_features, *clip, space=extractor.space, inception=in_inception)


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


def _concatenate(
    batches: list[torch.Tensor], extractor: FeatureExtractor | InceptionFeatures
) -> torch.Tensor:
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
    tones: Sequence[MeasuredTone] | None = None,
    per_image: dict[str, np.ndarray] | None = None,
) -> dict[str, object]:
    """The metrics for the whole set, ``by_skin_tone`` group, ``by_skin_type``, the ``gaps`` between groups and
    the ``skin_tone_fidelity`` of the generated images (with ``tones``, one per generated image).

    ``real`` are the real images' labels in feature order (None: unlabelled, so no per-group real side). A
    ``per_image`` dictionary is filled with the whole set's per-image values (see :class:`Evaluation`).
    ``warnings`` are records ``{code, subset, message, …}`` (docs/pipeline.md lists the codes).
    """
    warnings: list[dict[str, object]] = []
    correct = (
        None if closed_loop is None else np.array([np.nan if c is None else c for c in closed_loop.correct])
    )
    spaces = embedded.spaces()
    everything = Subset("all", list(range(len(embedded.real))), list(range(len(embedded.generated))))
    groups = list(group_subsets(real, generated))
    equal_n = _equal_n_sizes(groups)

    def compute(
        subset: Subset, values: dict[str, np.ndarray] | None = None, sizes: tuple[int, int] | None = None
    ) -> dict[str, object]:
        return _subset_metrics(embedded, generated, subset, settings, correct, warnings, values, sizes)

    results: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "feature_spaces": list(spaces),
        "distances": {
            space: {**distance_keys(space), "dim": int(features[0].shape[1])}
            for space, features in spaces.items()
        },
        "feature_dim": int(embedded.real.shape[1]),
        **compute(everything, per_image),
        "closed_loop": None if closed_loop is None else closed_loop.summary(),
        "settings": asdict(settings),
    }
    by_group = {s.name: compute(s, sizes=equal_n) for s in groups}
    results["by_skin_tone"] = by_group
    results["by_skin_type"] = {s.name: compute(s) for s in type_subsets(real, generated, settings.k + 1)}
    _warn_unequal_groups(groups, warnings)
    results["skin_tone_fidelity"] = (
        None
        if tones is None
        else skin_tone_fidelity([image.skin_tone for image in generated], tones, settings.confidence)
    )
    results["gaps"] = gaps(by_group, metric_infos(list(spaces)), settings.confidence)
    results["summary"] = [gap["text"] for gap in results["gaps"].values()]
    results["warnings"] = warnings
    return results


def headline_of(results: dict[str, object]) -> tuple[str, ...]:
    """The headline keys of an evaluation's results (its feature spaces' distances, then the per-image
    metrics): what a bundle's manifest and the command's summary line carry."""
    return headline_keys(results["feature_spaces"])


def _equal_n_sizes(groups: Sequence[Subset]) -> tuple[int, int] | None:
    """The smallest real and generated sizes among the groups with ≥ 2 images per side (None: < 2 such)."""
    usable = [
        (len(s.real), len(s.generated))
        for s in groups
        if s.real is not None and min(len(s.real), len(s.generated)) >= _MIN_GROUP
    ]
    if len(usable) < 2:
        return None
    return min(r for r, _ in usable), min(g for _, g in usable)


def _warn(warnings: list[dict[str, object]], code: str, subset: str, message: str, **details: object) -> None:
    warnings.append({"code": code, "subset": subset, "message": message, **details})


def _warn_unequal_groups(groups: Sequence[Subset], warnings: list[dict[str, object]]) -> None:
    """One ``unequal_group_sizes`` warning when the skin-tone groups' sizes differ by more than UNEQUAL_RATIO."""
    for side in ("real", "generated"):
        sizes = {s.name: len(getattr(s, side)) for s in groups if getattr(s, side)}
        if len(sizes) >= 2 and max(sizes.values()) > UNEQUAL_RATIO * min(sizes.values()):
            _warn(
                warnings, "unequal_group_sizes", "by_skin_tone",
                f"the skin-tone groups differ in size ({side}: "
                + ", ".join(f"{g} {n}" for g, n in sizes.items())
                + "): the plug-in FD grows as n shrinks, so compare groups by FD∞, FD at equal n or KD; "
                "recall and coverage also depend on the number of generated images",
                side=side, sizes=sizes,
            )  # fmt: skip


def _subset_metrics(
    embedded: Embedded,
    generated: Sequence[EvalImage],
    subset: Subset,
    settings: EvaluationSettings,
    correct: np.ndarray | None,
    warnings: list[dict[str, object]],
    per_image: dict[str, np.ndarray] | None = None,
    equal_n: tuple[int, int] | None = None,
) -> dict[str, object]:
    from skingen.evaluation import metrics

    rng = np.random.default_rng([settings.seed, zlib.crc32(subset.name.encode())])
    boot = {"replicates": settings.bootstrap, "rng": rng, "confidence": settings.confidence}
    fake = embedded.generated[subset.generated]
    real = None if subset.real is None else embedded.real[subset.real]
    out: dict[str, object] = {"n_real": None if real is None else len(real), "n_generated": len(fake)}
    out.update(dict.fromkeys(_null_keys(list(embedded.spaces()), equal_n is not None)))
    where = "" if subset.name == "all" else f"Fitzpatrick {subset.name}: "
    # distribution distances need both sides
    if real is not None and min(len(real), len(fake)) >= 2:
        for space, (real_all, fake_all) in embedded.spaces().items():
            _distances(out, space, real_all[subset.real], fake_all[subset.generated], subset.name, settings,
                       warnings, equal_n)  # fmt: skip
    elif real is not None:
        _warn(
            warnings, "too_few_images", subset.name,
            f"{where}FD/KD need ≥ 2 images per side (real {len(real)}, generated {len(fake)})",
            n_real=len(real), n_generated=len(fake),
        )  # fmt: skip
    # the k-NN metrics and diversity are quadratic in the images: on a seeded subsample beyond the cap
    knn_real, knn_fake = (knn_sample(n, settings, subset.name, side) for n, side in
                          ((0 if real is None else len(real), "real"), (len(fake), "generated")))  # fmt: skip
    out["knn_samples"] = {"real": None if real is None else len(knn_real), "generated": len(knn_fake)}
    if max(len(knn_real), len(knn_fake)) < max(0 if real is None else len(real), len(fake)):
        _warn(
            warnings, "knn_subsample", subset.name,
            f"{where}precision/recall/density/coverage and diversity on a seeded subsample of at most "
            f"{settings.knn_max_samples} images per side (--knn-max-samples)",
            cap=settings.knn_max_samples,
        )  # fmt: skip
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
        _warn(
            warnings, "too_few_images", subset.name,
            f"{where}precision/recall/density/coverage need > k={settings.k} images per side "
            f"(real {len(real)}, generated {len(fake)})",
            n_real=len(real), n_generated=len(fake),
        )  # fmt: skip
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


def _distances(
    out: dict[str, object],
    space: str,
    real: torch.Tensor,
    fake: torch.Tensor,
    subset: str,
    settings: EvaluationSettings,
    warnings: list[dict[str, object]],
    equal_n: tuple[int, int] | None,
) -> None:
    """FD (plug-in and FD∞ with its interval), KD with its interval and, for a group, FD at equal n, in one
    feature space; each from its own seeded stream (so adding a space or a group changes no other number)."""
    from skingen.evaluation import distances

    keys = distance_keys(space)
    jackknife = {"groups": settings.jackknife_groups, "confidence": settings.confidence}
    result = distances.fd_with_interval(real, fake, **jackknife, rng=_stream(settings, "fd", space, subset))
    out[keys["fd"]] = max(result.plugin, 0.0)  # rounding gives −1e-13 for a set against itself
    if result.inf is not None:
        out[keys["fd_inf"]], out[f"{keys['fd_inf']}_ci"] = result.inf.estimate, result.inf.ci
    kd_real, kd_fake = (
        cap_sample(len(x), settings.kd_max_samples, settings.seed, f"kd:{space}:{subset}:{side}")
        for x, side in ((real, "real"), (fake, "generated"))
    )
    if max(len(kd_real), len(kd_fake)) < max(len(real), len(fake)):
        _warn(
            warnings, "kd_subsample", subset,
            f"{keys['kd']} on a seeded subsample of at most {settings.kd_max_samples} images per side "
            "(--kd-max-samples)",
            cap=settings.kd_max_samples,
        )  # fmt: skip
    kernel = distances.kd_with_interval(
        real[kd_real], fake[kd_fake], **jackknife, rng=_stream(settings, "kd", space, subset)
    )
    out[keys["kd"]] = kernel.estimate
    out[f"{keys['kd']}_ci"] = None if kernel.interval is None else kernel.interval.ci
    dim = int(real.shape[1])
    n = min(len(real), len(fake))
    if distances.small_n_for_dimension(n, dim):
        minimum = distances.MIN_IMAGES_PER_DIMENSION * dim
        _warn(
            warnings, "small_n_for_dimension", subset,
            f"{'' if subset == 'all' else f'Fitzpatrick {subset}: '}{n} images per side for {dim}-dimensional "
            f"{space} features: FD and its interval are unreliable below {minimum} "
            f"({distances.MIN_IMAGES_PER_DIMENSION} per dimension); read {keys['kd']} first",
            space=space, n=n, dim=dim, min_n=minimum,
        )  # fmt: skip
    if equal_n is not None and settings.equal_n_draws:
        draws = distances.fd_at_equal_n(
            real,
            fake,
            *equal_n,
            draws=settings.equal_n_draws,
            rng=_stream(settings, "equal_n", space, subset),
        )
        tail = (1 - settings.confidence) / 2 * 100
        low, high = np.percentile(draws, [tail, 100 - tail])
        out[keys["fd_equal_n"]] = {
            "n_real": equal_n[0], "n_generated": equal_n[1], "mean": float(draws.mean()),
            "low": float(low), "high": float(high), "draws": len(draws),
        }  # fmt: skip


def _stream(settings: EvaluationSettings, *parts: str) -> np.random.Generator:
    return np.random.default_rng([settings.seed, zlib.crc32(":".join(parts).encode())])


def knn_sample(n: int, settings: EvaluationSettings, subset: str, side: str) -> np.ndarray:
    """Indices of the images the k-NN metrics use: all ``n``, or a sorted seeded sample of the cap (its own
    random stream per subset and side, so the other draws do not change with the cap)."""
    return cap_sample(n, settings.knn_max_samples, settings.seed, f"knn:{subset}:{side}")


def cap_sample(n: int, cap: int, seed: int, stream: str) -> np.ndarray:
    """All ``n`` indices, or (beyond ``cap``; 0: no cap) a sorted sample of ``cap`` from the seeded ``stream``."""
    if cap == 0 or n <= cap:
        return np.arange(n)
    rng = np.random.default_rng([seed, zlib.crc32(stream.encode())])
    return np.sort(rng.choice(n, cap, replace=False))


_PER_GENERATED = (
    "precision",
    "density",
    "diversity",
)  # one value per generated image (recall, coverage: real)


def _null_keys(spaces: list[str], groups: bool) -> list[str]:
    """Every metric key of an entry, so a metric that could not be computed is present as null."""
    keys = []
    for space in spaces:
        names = distance_keys(space)
        keys += [names["fd"], names["fd_inf"], f"{names['fd_inf']}_ci", names["kd"], f"{names['kd']}_ci"]
        if groups:
            keys.append(names["fd_equal_n"])
    for metric in PER_IMAGE_METRICS:
        keys += [metric.key, f"{metric.key}_ci"]
    return [*keys, "clip_score_real"]


def _mean_with_ci(out: dict[str, object], key: str, values: np.ndarray, boot: dict[str, object]) -> None:
    """``out[key]`` = mean of the non-NaN per-image ``values`` (None if none), ``out[key_ci]`` its interval."""
    from skingen.evaluation.metrics import bootstrap_ci

    values = np.asarray(values, dtype=float)
    known = values[~np.isnan(values)]
    out[key] = float(known.mean()) if len(known) else None
    out[f"{key}_ci"] = bootstrap_ci(known, **boot)
