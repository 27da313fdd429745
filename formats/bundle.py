"""The stimulus bundle format (``manifest.json`` + images), shared by the pipeline and the study app.

A bundle is a directory::

    BUNDLE/
      manifest.json            # this schema
      cases/<case_id>.png      # the patient photo shown on a trial
      references/<case_id>/... # generated reference images (+ provenance JSON beside each), and real images
                               # retrieved from a prepared image set (retrieved_<i>.png; provenance in the manifest)
      evaluation/              # with `skingen bundle build --evaluate`: metrics.json + report.html

All paths in the manifest are relative to the bundle directory and must stay inside it, so a bundle can be
copied, zipped and versioned as one unit. This module is pure Python (pydantic), no torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

FORMAT_NAME = "skingen-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
"""The Fitzpatrick types a case's ``skin_tone`` may name."""


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the bundle path and every problem."""


class BundleNotFoundError(BundleError):
    """No bundle at all where one was expected (no ``manifest.json``): not drawn or built yet, or moved."""


def _relative_path(value: str) -> str:
    path = PurePosixPath(value.replace("\\", "/"))
    if not path.parts or path.is_absolute() or ":" in path.parts[0]:
        raise ValueError(f"must be a relative path inside the bundle, got {value!r}")
    if ".." in path.parts:
        raise ValueError(f"must not leave the bundle directory ('..'), got {value!r}")
    return value


RelativePath = Annotated[str, AfterValidator(_relative_path)]


class _Model(BaseModel):
    # Fields keep the file's names as aliases (a skin condition is "condition" in manifest.json, as bundles
    # were written), while the code says ``skin_condition``: "condition" in code is an experimental condition.
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class DifferentialEntry(_Model):
    skin_condition: str = Field(alias="condition", description="Taxonomy id, or 'unknown'.")
    score: float = Field(ge=0.0, le=1.0)


class AIOutput(_Model):
    """What the AI said about a case: shown to every participant (text) in both conditions."""

    skin_condition: str = Field(
        alias="condition", description="Taxonomy id of the AI's top diagnosis ('unknown' if none matched)."
    )
    display_name: str = Field(description="Name shown to participants, e.g. 'Psoriasis'.")
    text: str = Field(description="The diagnosis sentence shown to participants.")
    rationale: str = Field(default="", description="The AI's reasoning, shown under the diagnosis.")
    differential: tuple[DifferentialEntry, ...] = ()
    model_id: str = Field(default="", description="Which model produced this output ('fixed': from a CSV).")


class ClosedLoopCheck(_Model):
    """What a diagnoser saw in one reference image (``skingen bundle build --evaluate``): does it show its
    condition? Dermatologists' ratings of the same image are compared with this in the analysis."""

    diagnoser: str = Field(description="Model id of the diagnoser that looked at the image.")
    diagnosed: str = Field(description="Taxonomy id it diagnosed ('unknown' if none matched).")
    correct: bool = Field(description="True when it diagnosed the image's own condition.")


class ReferenceImage(_Model):
    """One generated reference image of the AI's diagnosed condition."""

    image: RelativePath
    caption: str = Field(
        description="Shown under the image, e.g. 'Generated example of psoriasis — not you'."
    )
    skin_condition: str = Field(alias="condition")
    provenance: RelativePath | None = Field(default=None, description="Path of the provenance JSON, if any.")
    generated: bool = True
    closed_loop: ClosedLoopCheck | None = Field(default=None, description="Set by --evaluate.")


class RetrievedImage(_Model):
    """One real photo of the AI's diagnosed condition from a prepared image set: the control for generated
    references. It keeps what its licence asks for (source, licence, attribution, all in ``caption``) and why
    it was chosen (its rank and feature distance to the case photo; the settings are the manifest's
    ``retrieval``)."""

    image: RelativePath
    caption: str = Field(
        description="Shown under the image: 'Real example of psoriasis — not the patient. Photo: SCIN (SCIN "
        "Data Use License)' plus the attribution, as the licence requires."
    )
    skin_condition: str = Field(
        alias="condition", description="Taxonomy id: the AI's diagnosis, which the image is labelled with."
    )
    source: str = Field(description="The dataset it comes from (metadata.csv's source).")
    licence: str
    attribution: str = Field(default="", description="Credit the licence asks for beyond source and licence.")
    skin_tone: str | None = Field(default=None, description="Its skin tone label in the set, if any.")
    dataset_file: str = Field(description="Its file in the prepared set (metadata.csv's file).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of that file.")
    rank: int = Field(ge=1, description="1 = nearest to the case photo.")
    distance: float = Field(ge=0.0, description="Cosine distance to the case photo in the feature space.")
    same_skin_tone_group: bool | None = Field(
        default=None, description="Whether its skin-tone group is the case's (None: the case's is unknown)."
    )


class RetrievalProvenance(_Model):
    """How a bundle's retrieved images were chosen (``skingen bundle build --retrieve``)."""

    data: str = Field(description="The prepared image set, as given.")
    data_sha256: str = Field(description="SHA-256 of its metadata.csv and every image (PreparedDataset).")
    features: str = Field(description="The local image encoder the distances were computed with.")
    feature_model_type: str = ""
    k: int = Field(ge=1)
    metric: Literal["cosine"] = "cosine"
    phash_distance: int = Field(ge=0, le=64, description="Images within this many pHash bits are excluded.")
    prefer_skin_tone: bool = True
    same_patient_excluded: bool = Field(description="The set names patients (metadata.csv's patient).")


class Case(_Model):
    case_id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    image: RelativePath
    ground_truth: str = Field(description="Taxonomy id of the true condition.")
    ai: AIOutput
    references: tuple[ReferenceImage, ...] = ()
    retrieved: tuple[RetrievedImage, ...] = Field(
        default=(), description="Real images of the AI's diagnosis (bundles built with --retrieve)."
    )
    skin_tone: str | None = Field(default=None, description="Fitzpatrick type I–VI, if known.")
    alt_text: str = ""

    @property
    def ai_correct(self) -> bool:
        """True when the AI's top diagnosis is the ground truth (wrong-AI cases are planted on purpose)."""
        return self.ai.skin_condition == self.ground_truth


class SkinConditionEntry(_Model):
    """A skin condition of the taxonomy as the bundle's participants see it (name and description)."""

    id: str
    display_name: str
    description: str = ""


class BundleEvaluation(_Model):
    """The bundle's image metrics (``skingen bundle build --evaluate``): the headline numbers, overall and per
    Fitzpatrick group, with the full ``metrics.json`` and ``report.html`` beside the manifest."""

    metrics: RelativePath = Field(description="The full metrics.json (docs/pipeline.md, 'metrics.json').")
    report: RelativePath
    real: str = Field(description="The real image set the references were compared with.")
    features: str = Field(description="The feature extractor.")
    diagnoser: str = Field(description="Model id of the closed loop's diagnoser.")
    headline: dict[str, float | None] = Field(
        description="fd_<space>, fd_<space>_inf, kd_<space> (fid, fid_inf, kid with Inception weights), …, "
        "closed_loop_accuracy of all images."
    )
    by_skin_tone: dict[str, dict[str, float | None]] = Field(
        default_factory=dict, description="The same numbers per Fitzpatrick group (I–II, III–IV, V–VI)."
    )


class BundleManifest(_Model):
    format: Literal["skingen-bundle"] = FORMAT_NAME
    format_version: Literal[1] = FORMAT_VERSION
    bundle_id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    version: str
    created_at: str = ""
    description: str = ""
    synthetic: bool = Field(default=False, description="True for demo bundles of drawn, not real, images.")
    generator: dict[str, object] = Field(default_factory=dict, description="Pipeline settings (free form).")
    retrieval: RetrievalProvenance | None = Field(
        default=None, description="How the cases' retrieved images were chosen; None: none were."
    )
    skin_conditions: tuple[SkinConditionEntry, ...] = Field(alias="conditions", min_length=1)
    cases: tuple[Case, ...] = Field(min_length=1)
    evaluation: BundleEvaluation | None = Field(default=None, description="Set by --evaluate.")

    @model_validator(mode="after")
    def _check_references(self) -> BundleManifest:
        ids = [c.case_id for c in self.cases]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate case_id(s): {', '.join(duplicates)}")
        known = {c.id for c in self.skin_conditions} | {"unknown"}
        for case in self.cases:
            for name, value in (
                ("ground_truth", case.ground_truth),
                ("ai.condition", case.ai.skin_condition),
            ):
                if value not in known:
                    raise ValueError(f"case {case.case_id!r}: {name} {value!r} is not in 'conditions'")
            if case.retrieved and self.retrieval is None:
                raise ValueError(
                    f"case {case.case_id!r}: retrieved images without the manifest's 'retrieval'"
                )
            for retrieved in case.retrieved:
                if retrieved.skin_condition != case.ai.skin_condition:
                    raise ValueError(
                        f"case {case.case_id!r}: a retrieved image of {retrieved.skin_condition!r} for the AI's "
                        f"diagnosis {case.ai.skin_condition!r} (retrieval shows the diagnosed condition)"
                    )
        return self

    def case(self, case_id: str) -> Case:
        for case in self.cases:
            if case.case_id == case_id:
                return case
        raise KeyError(case_id)

    def skin_condition_name(self, skin_condition: str) -> str:
        for entry in self.skin_conditions:
            if entry.id == skin_condition:
                return entry.display_name
        return skin_condition


class Bundle:
    """A loaded, validated bundle: the manifest plus the directory its paths are relative to."""

    def __init__(self, root: Path, manifest: BundleManifest) -> None:
        self.root = root
        self.manifest = manifest
        self._resolved_root = root.resolve()

    def path(self, relative: str) -> Path:
        """Absolute path of a manifest path. Checked again here, not only at load time: a symlink swapped in
        after the study was registered must not let the app serve a file from outside the bundle."""
        path = self.root / relative
        if not path.resolve().is_relative_to(self._resolved_root):
            raise BundleError(f"{self.root}: {relative!r} resolves outside the bundle directory")
        return path

    def images(self) -> list[Path]:
        """Every image the manifest names (cases, generated and retrieved references), each once."""
        relative = [path for field, path in referenced_files(self.manifest) if field.endswith(".image")]
        return [self.path(path) for path in dict.fromkeys(relative)]

    @property
    def content_hash(self) -> str:
        """SHA-256 of the manifest bytes: stored with the study so stimuli can't change silently."""
        return hashlib.sha256((self.root / MANIFEST_NAME).read_bytes()).hexdigest()


def format_validation_error(error: ValidationError) -> list[str]:
    """One line per problem: the field path (``cases[2].ai.condition``) and pydantic's message."""
    messages = []
    for item in error.errors():
        loc = ""
        for part in item["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        messages.append(f"{loc or '(manifest)'}: {item['msg']}")
    return messages


def load_bundle(path: str | Path, *, check_files: bool = True) -> Bundle:
    """Load and validate ``path`` (a bundle directory or its manifest.json).

    Raises :class:`BundleError` listing every problem: schema errors with the field path, missing image files,
    and paths that resolve outside the bundle (symlinks included).
    """
    path = Path(path)
    root = path.parent if path.name == MANIFEST_NAME else path
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleNotFoundError(f"{manifest_path}: no bundle manifest here")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not readable JSON ({exc})") from exc
    try:
        manifest = BundleManifest.model_validate(data)
    except ValidationError as exc:
        raise BundleError(f"{manifest_path}:\n  " + "\n  ".join(format_validation_error(exc))) from None
    bundle = Bundle(root, manifest)
    if check_files:
        problems = bundle_file_problems(bundle)
        if problems:
            raise BundleError(f"{manifest_path}:\n  " + "\n  ".join(problems))
    return bundle


def referenced_files(manifest: BundleManifest) -> list[tuple[str, str]]:
    """(field, relative path) of every file the manifest refers to, in manifest order."""
    paths = []
    for index, case in enumerate(manifest.cases):
        paths.append((f"cases[{index}].image", case.image))
        for ref_index, ref in enumerate(case.references):
            paths.append((f"cases[{index}].references[{ref_index}].image", ref.image))
            if ref.provenance:
                paths.append((f"cases[{index}].references[{ref_index}].provenance", ref.provenance))
        for ref_index, retrieved in enumerate(case.retrieved):
            paths.append((f"cases[{index}].retrieved[{ref_index}].image", retrieved.image))
    if manifest.evaluation is not None:
        paths += [
            ("evaluation.metrics", manifest.evaluation.metrics),
            ("evaluation.report", manifest.evaluation.report),
        ]
    return paths


def bundle_file_problems(bundle: Bundle) -> list[str]:
    """Every referenced file that is missing or resolves outside the bundle directory."""
    root = bundle.root.resolve()
    problems = []
    for field, relative in referenced_files(bundle.manifest):
        resolved = (bundle.root / relative).resolve()
        if not resolved.is_relative_to(root):
            problems.append(f"{field}: {relative!r} resolves outside the bundle directory")
        elif not resolved.is_file():
            problems.append(f"{field}: file {relative!r} does not exist")
    return problems


def write_manifest(root: Path, manifest: BundleManifest) -> Path:
    """Write ``manifest.json`` atomically (temp file + rename), so a crash never leaves half a manifest."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / MANIFEST_NAME
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target
