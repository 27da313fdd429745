"""Case photos + ``cases.csv`` → diagnose → k reference images per case → a versioned stimulus bundle.

``cases.csv`` columns: ``case_id,file,ground_truth[,ai_condition,ai_text,ai_rationale,skin_tone,patient]``. A
row with ``ai_condition`` carries a fixed AI output that overrides the diagnoser (how wrong-AI cases are
planted). ``patient`` names the case's patient as the retrieval set does (its ``patient`` column), so that
retrieval never shows the patient's own other photos.

With a :class:`~skingen.bundle.retrieval.ReferenceRetriever`, each case also gets the real images of the AI's
diagnosis nearest to its photo (``Case.retrieved``), with their licences.

The bundle is written into a staging folder beside the output and swapped into place only once it
validates (:func:`skingen.bundle.writing.write_bundle`), so a failure never leaves half a bundle. Needs torch
only through the generator it is given.

Under ``accelerate launch`` (a :class:`~skingen.distributed.ProcessShare` of several processes) each process
builds its strided share of the cases into the main process's staging folder; the main process merges the
cases back into ``cases.csv`` order, writes the manifest and swaps the folder in. Every reference depends only
on its prompt and seed, so the bundle is the one a single process builds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from tqdm.auto import tqdm

from formats.bundle import (
    AIOutput,
    BundleEvaluation,
    BundleManifest,
    Case,
    ReferenceImage,
    RetrievedImage,
)
from formats.taxonomy import UNKNOWN, Taxonomy
from skingen.bundle.evaluation import BundleEvaluator, Evaluated
from skingen.bundle.retrieval import ReferenceRetriever
from skingen.bundle.writing import BundleWriter, condition_entries, retrieved_caption, write_bundle
from skingen.diagnosis.base import Diagnoser, Diagnosis
from skingen.distributed import Outcome, ProcessShare, raise_failures, unshard
from skingen.errors import SkinGenError
from skingen.generation import DEFAULT_GUIDANCE, DEFAULT_SIZE, DEFAULT_STEPS
from skingen.prompts import PromptBuilder
from skingen.provenance import ImageLabels
from skingen.skin_tone import FITZPATRICK_TYPES
from skingen.sources import file_sha256, load_image, read_table

if TYPE_CHECKING:
    from skingen.generation import ReferenceGenerator

log = logging.getLogger(__name__)

CASES_FILE = "cases.csv"
REQUIRED_COLUMNS = ("case_id", "file", "ground_truth")
_CASE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class CaseRow:
    """One validated row of ``cases.csv``; ``fixed_ai`` is set when the row overrides the diagnoser."""

    case_id: str
    image_path: Path
    ground_truth: str
    fixed_ai: AIOutput | None
    skin_tone: str | None
    patient: str | None = None


@dataclass(frozen=True)
class BundleSettings:
    """How references are generated, and the bundle's identity; stored in the manifest's ``generator``."""

    bundle_id: str
    version: str = "1"
    description: str = ""
    k: int = 3
    seed: int = 0
    steps: int = DEFAULT_STEPS
    guidance: float = DEFAULT_GUIDANCE
    width: int = DEFAULT_SIZE
    height: int = DEFAULT_SIZE
    skin_tone: str | None = None
    severity: str | None = None
    trigger: str | None = None


def read_cases(cases_dir: str | Path, taxonomy: Taxonomy) -> list[CaseRow]:
    """Validate ``cases_dir/cases.csv`` and every photo it names, before any model is loaded."""
    cases_dir = Path(cases_dir)
    path = cases_dir / CASES_FILE
    rows = read_table(path, REQUIRED_COLUMNS, what="cases file")
    if not rows:
        raise SkinGenError(f"{path}: no cases")
    cases: list[CaseRow] = []
    seen: set[str] = set()
    for line, row in rows:
        where = f"{path}, line {line}"
        case_id = row["case_id"]
        if not _CASE_ID.match(case_id):
            raise SkinGenError(f"{where}: case_id {case_id!r} must be 1–64 of A–Z a–z 0–9 _ . -")
        if case_id in seen:
            raise SkinGenError(f"{where}: duplicate case_id {case_id!r}")
        seen.add(case_id)
        image_path = cases_dir / row["file"].strip()
        load_image(image_path, f"{where}: case photo")
        skin_tone = (row.get("skin_tone") or "").strip() or None
        if skin_tone is not None and skin_tone not in FITZPATRICK_TYPES:
            raise SkinGenError(
                f"{where}: skin_tone {skin_tone!r} must be a Fitzpatrick type {'/'.join(FITZPATRICK_TYPES)}"
            )
        cases.append(
            CaseRow(
                case_id=case_id,
                image_path=image_path,
                ground_truth=taxonomy.resolve(row["ground_truth"], where),
                fixed_ai=_fixed_ai(row, taxonomy, where),
                skin_tone=skin_tone,
                patient=(row.get("patient") or "").strip() or None,
            )
        )
    return cases


def _fixed_ai(row: dict[str, str], taxonomy: Taxonomy, where: str) -> AIOutput | None:
    value = (row.get("ai_condition") or "").strip()
    if not value:
        if (row.get("ai_text") or row.get("ai_rationale") or "").strip():
            raise SkinGenError(f"{where}: ai_text/ai_rationale given without ai_condition")
        return None
    condition = taxonomy.resolve(value, where)
    diagnosis = Diagnosis.from_ranking(
        taxonomy,
        [] if condition == UNKNOWN else [(condition, 1.0)],
        rationale=(row.get("ai_rationale") or "").strip(),
        raw_output=value,
        model_id="fixed",
    )
    return diagnosis.ai_output((row.get("ai_text") or "").strip() or None)


class BundleBuilder:
    """Diagnoses each case (unless its AI output is fixed) and generates ``k`` references of that diagnosis.

    Reference ``i`` of every case uses seed ``settings.seed + i`` and the ``i``-th body-site variation of the
    prompt, so cases with the same diagnosis and skin tone share references (generated once, then cached) —
    unless an IP-Adapter conditions them on each case's photo. With a ``retriever``, the real images of that
    diagnosis nearest to the case photo are copied in too.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        prompts: PromptBuilder,
        generator: ReferenceGenerator,
        diagnoser: Diagnoser | None,
        settings: BundleSettings,
        *,
        evaluator: BundleEvaluator | None = None,
        retriever: ReferenceRetriever | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.prompts = prompts
        self.generator = generator
        self.diagnoser = diagnoser
        self.settings = settings
        self.evaluator = evaluator
        self.retriever = retriever

    def check_inputs(self, cases: list[CaseRow]) -> None:
        if self.settings.k < 1:
            raise SkinGenError(f"k: must be ≥ 1, got {self.settings.k}")
        if not re.match(r"^[A-Za-z0-9_.-]+$", self.settings.bundle_id):
            raise SkinGenError(f"bundle_id {self.settings.bundle_id!r}: use only A–Z a–z 0–9 _ . -")
        if self.generator.inpaint:
            raise SkinGenError(
                "--sd: bundles are built with a text-to-image model, not an inpainting pipeline"
            )
        undiagnosed = [c.case_id for c in cases if c.fixed_ai is None]
        if undiagnosed and self.diagnoser is None:
            raise SkinGenError(
                f"cases {', '.join(undiagnosed[:5])} have no AI output: pass --vlm, --clip or --diagnoses"
            )

    def __call__(
        self,
        cases: list[CaseRow],
        out: str | Path,
        *,
        overwrite: bool = False,
        progress: bool = True,
        share: ProcessShare | None = None,
    ) -> Path:
        """Build the bundle at ``out``; returns its path. With ``share``, this process builds its share only
        (every process of the share must call this with the same arguments)."""
        # 1. Check inputs (the output location is checked by write_bundle, before any work)
        self.check_inputs(cases)
        share = share or ProcessShare()
        mine = share.shard(cases)

        def build_share(writer: BundleWriter) -> Outcome[list[Case]]:
            bar = tqdm(
                mine, desc="building bundle", unit="case", disable=not progress or not share.is_main_process
            )
            return share.attempt(lambda: [self.build_case(case, writer) for case in bar])

        if not share.is_main_process:
            self._follow(share, build_share, progress)
            return Path(out)

        # 2. Diagnose and illustrate each case in a staging folder, 3. with an evaluator, evaluate the
        # references there, 4. write the manifest; the bundle is validated as the study app will load it before
        # it replaces ``out``. The staging folder (then the merged cases) goes to the other processes first;
        # every process takes part in each exchange even when something failed.
        def write(writer: BundleWriter) -> BundleManifest:
            share.broadcast(Outcome(0, value=writer.root))
            shares = raise_failures(share.gather(build_share(writer)), share.process_index)
            cases = unshard(shares)
            if self.evaluator is None:
                return self.manifest(cases)
            share.broadcast(Outcome(0, value=cases))
            evaluated = self.evaluate(cases, writer.root, share, progress)
            return self.manifest(evaluated.cases, evaluation=evaluated.record)

        try:
            write_bundle(out, write, overwrite=overwrite)
        except Exception as exc:
            share.broadcast(Outcome(0, error=str(exc) or type(exc).__name__))  # before or after the build
            raise
        share.broadcast(Outcome(0))
        return Path(out)

    def _follow(
        self,
        share: ProcessShare,
        build_share: Callable[[BundleWriter], Outcome[list[Case]]],
        progress: bool,
    ) -> None:
        """A non-main process: receive the staging folder, build its share there, hand over its cases; with an
        evaluator, receive the merged cases and evaluate its share of the references."""
        staging: Outcome[Path] = share.broadcast(Outcome(0))
        if staging.error is not None:
            raise SkinGenError(f"the main process could not start the bundle: {staging.error}")
        outcome = build_share(BundleWriter(staging.value))
        share.gather(outcome)
        final: Outcome[object] = share.broadcast(Outcome(0))
        if self.evaluator is not None and final.error is None:
            merged: Outcome[list[Case]] = final
            outcome = share.attempt(lambda: self.evaluate(merged.value, staging.value, share, progress))
            final = share.broadcast(Outcome(0))
        raise_failures([outcome], share.process_index)
        if final.error is not None:
            raise SkinGenError(f"the main process could not finish the bundle: {final.error}")

    def evaluate(
        self, cases: list[Case], root: Path, share: ProcessShare, progress: bool
    ) -> Evaluated | None:
        """The evaluator on the built references (``None`` on non-main processes)."""
        return self.evaluator(
            cases, root, self.settings.skin_tone, share=share, progress=progress and share.is_main_process
        )

    def build_case(self, case: CaseRow, writer: BundleWriter) -> Case:
        photo = load_image(case.image_path, "case photo")
        image_rel = writer.case_photo(case.case_id, photo)
        ai = case.fixed_ai or self.diagnoser.diagnose(photo, case.case_id).ai_output()
        return Case(
            case_id=case.case_id,
            image=image_rel,
            ground_truth=case.ground_truth,
            ai=ai,
            references=self.references(case, ai, photo, writer),
            retrieved=self.retrieved(case, ai, photo, writer),
            skin_tone=case.skin_tone,
        )

    def references(
        self, case: CaseRow, ai: AIOutput, photo: Image.Image, writer: BundleWriter
    ) -> tuple[ReferenceImage, ...]:
        """``k`` generated images of the AI's diagnosis; none for ``unknown`` (nothing to show)."""
        if ai.skin_condition == UNKNOWN:
            log.warning(
                "case %s: the AI's diagnosis is unknown, so it gets no reference images", case.case_id
            )
            return ()
        settings = self.settings
        prompts = self.prompts.variations(
            ai.skin_condition,
            settings.k,
            skin_tone=case.skin_tone or settings.skin_tone,
            severity=settings.severity,
            trigger=settings.trigger,
        )
        references = []
        for index, prompt in enumerate(prompts):
            [generated] = self.generator(
                prompt.prompt,
                prompt.negative_prompt,
                seeds=[settings.seed + index],
                steps=settings.steps,
                guidance=settings.guidance,
                width=settings.width,
                height=settings.height,
                ip_adapter_image=photo if self.generator.ip_adapter is not None else None,
            )
            references.append(
                writer.reference(
                    case.case_id,
                    f"ref_{index}",
                    generated.image,
                    condition=ai.skin_condition,
                    display_name=ai.display_name,
                    provenance=generated.record.to_json(
                        ImageLabels(condition=ai.skin_condition, skin_tone=prompt.skin_tone)
                    ),
                )
            )
        return tuple(references)

    def retrieved(
        self, case: CaseRow, ai: AIOutput, photo: Image.Image, writer: BundleWriter
    ) -> tuple[RetrievedImage, ...]:
        """The real images of the AI's diagnosis nearest to the photo; none without a retriever or for
        ``unknown``."""
        if self.retriever is None or ai.skin_condition == UNKNOWN:
            return ()
        neighbours = self.retriever(
            case.case_id,
            case.image_path,
            photo,
            ai.skin_condition,
            skin_tone=case.skin_tone,
            patient=case.patient,
        )
        retrieved = []
        for neighbour in neighbours:
            example = neighbour.example
            path = self.retriever.dataset.path(example)
            retrieved.append(
                RetrievedImage(
                    image=writer.retrieved_image(
                        case.case_id, neighbour.rank - 1, load_image(path, "retrieval set image")
                    ),
                    caption=retrieved_caption(
                        ai.display_name, example.source, example.licence, example.attribution
                    ),
                    skin_condition=ai.skin_condition,
                    source=example.source,
                    licence=example.licence,
                    attribution=example.attribution,
                    skin_tone=example.skin_tone or None,
                    dataset_file=example.file,
                    sha256=file_sha256(path),
                    rank=neighbour.rank,
                    distance=round(neighbour.distance, 6),
                    same_skin_tone_group=neighbour.same_skin_tone_group,
                )
            )
        return tuple(retrieved)

    def manifest(self, cases: list[Case], *, evaluation: BundleEvaluation | None = None) -> BundleManifest:
        settings = self.settings
        generator = self.generator
        return BundleManifest(
            bundle_id=settings.bundle_id,
            version=settings.version,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            description=settings.description,
            generator={
                "model": generator.model,
                "base": generator.architecture.name,  # "sd" (1.x/2.x) or "sdxl"
                "loras": [lora.model_dump() for lora in generator.loras],
                "ip_adapter": generator.ip_adapter.model_dump() if generator.ip_adapter else None,
                "diagnoser": self.diagnoser.model_id if self.diagnoser else None,
                "k": settings.k,
                "seed": settings.seed,
                "steps": settings.steps,
                "guidance": settings.guidance,
                "width": settings.width,
                "height": settings.height,
                "skin_tone": settings.skin_tone,
                "severity": settings.severity,
                "trigger": settings.trigger,
            },
            retrieval=self.retriever.provenance() if self.retriever else None,
            skin_conditions=condition_entries(self.taxonomy),
            cases=tuple(cases),
            evaluation=evaluation,
        )
