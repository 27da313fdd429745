"""What ``skingen worker`` runs for each job kind of formats/jobs.py, with the models it loaded.

Reference jobs are batched: every job the worker claimed together (same kind, same batch key) goes into one
:meth:`ReferenceGenerator.run`, which puts images that share settings into the same diffusers calls, so
several users' requests share the GPU's batch dimension. A problem with one job (a condition the taxonomy
does not know, no photo for an IP-Adapter) fails that job only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from formats.errors import FormatError
from formats.jobs import CHAT, DIAGNOSE, REFERENCES, decode_png, encode_png
from formats.taxonomy import Taxonomy
from skingen.diagnosis.base import ChatDiagnoser, Diagnoser
from skingen.diagnosis.openai_chat import ChatEndpointError
from skingen.diagnosis.reading import read_diagnosis
from skingen.errors import SkinGenError
from skingen.generation import DEFAULT_GUIDANCE, DEFAULT_SIZE, DEFAULT_STEPS, ReferenceGenerator, Request
from skingen.prompts import PromptBuilder
from skingen.worker import Handler, JobFailure, Outcome

if TYPE_CHECKING:
    from db.jobs import JobView


class Masker(Protocol):
    """Finds the affected area of a photo: white where the condition is (skingen/masking.py)."""

    model_id: str

    def __call__(self, photo: Image.Image, condition_name: str) -> Image.Image: ...


@dataclass(frozen=True)
class GenerationSettings:
    """A worker's fixed generation settings (the same for every job, so any two jobs can be batched)."""

    steps: int = DEFAULT_STEPS
    guidance: float = DEFAULT_GUIDANCE
    width: int = DEFAULT_SIZE
    height: int = DEFAULT_SIZE
    max_images_per_call: int = 8
    strength: float = 1.0
    trigger: str | None = None


class ModelServer:
    """The loaded models of one worker and a handler per job kind they can serve."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        *,
        diagnoser: Diagnoser | None = None,
        generator: ReferenceGenerator | None = None,
        inpainter: ReferenceGenerator | None = None,
        masker: Masker | None = None,
        prompts: PromptBuilder | None = None,
        settings: GenerationSettings | None = None,
    ) -> None:
        if inpainter is not None and masker is None:
            raise SkinGenError(
                "inpainting needs a masker (--detector and --segmenter) to find the affected area"
            )
        self.taxonomy = taxonomy
        self.diagnoser = diagnoser
        self.generator = generator
        self.inpainter = inpainter
        self.masker = masker
        self.prompts = prompts or PromptBuilder.load(taxonomy)
        self.settings = settings or GenerationSettings()

    def handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {}
        if self.diagnoser is not None:
            handlers[DIAGNOSE] = _each(self.diagnose)
        if isinstance(self.diagnoser, ChatDiagnoser):  # a VLM answers follow-up questions; CLIP cannot
            handlers[CHAT] = _each(self.chat)
        if self.generator is not None or self.inpainter is not None:
            handlers[REFERENCES] = self.references
        return handlers

    # --- diagnosis and chat: one job at a time (a VLM answer is one sequence) --------------------------

    def diagnose(self, job: JobView) -> Outcome:
        assert self.diagnoser is not None
        photo = decode_png(job.inputs["photo"])
        started = time.monotonic()
        diagnosis = self.diagnoser.diagnose(photo)
        names = {condition: self.taxonomy.display_name(condition) for condition, _ in diagnosis.differential}
        return {**diagnosis.to_dict(), "names": names, "latency_ms": _since(started)}

    def chat(self, job: JobView) -> Outcome:
        assert isinstance(self.diagnoser, ChatDiagnoser)
        photo = decode_png(job.inputs["photo"])
        history = [(question, answer) for question, answer in job.payload["history"]]
        started = time.monotonic()
        answer = self.diagnoser.ask(photo, job.payload["question"], history)
        reading = read_diagnosis(answer, self.taxonomy)
        return {
            "answer": answer,
            "condition": reading.condition,
            "display_name": self.taxonomy.display_name(reading.condition),
            "evidence": [mention.to_dict() for mention in reading.mentions],
            "model_id": self.diagnoser.model_id,
            "latency_ms": _since(started),
        }

    # --- references: the whole batch in one generator run ----------------------------------------------

    def references(self, jobs: list[JobView]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(jobs)
        planned: list[tuple[int, list[Request], list[int], str | None]] = []
        for index, job in enumerate(jobs):
            try:
                planned.append((index, *self._plan(job)))
            except FormatError as exc:
                outcomes[index] = JobFailure("bad_request", str(exc))
        by_pipeline: dict[bool, list[tuple[int, list[Request], list[int], str | None]]] = {}
        for entry in planned:
            by_pipeline.setdefault(bool(jobs[entry[0]].payload.get("inpaint")), []).append(entry)
        for inpaint, entries in by_pipeline.items():
            generator = self.inpainter if inpaint else self.generator
            assert generator is not None
            requests = [request for _, requests, _, _ in entries for request in requests]
            seeds = [seed for _, _, seeds, _ in entries for seed in seeds]
            started = time.monotonic()
            results = generator.run(requests, seeds, batch_size=self.settings.max_images_per_call)
            latency = _since(started)
            for index, requests_of_job, _, mask in entries:
                mine, results = results[: len(requests_of_job)], results[len(requests_of_job) :]
                outcomes[index] = {
                    "images": [
                        {
                            "key": result.record.key(),
                            "png": encode_png(result.image),
                            "provenance": result.record.model_dump(mode="json"),
                            "mask": mask,
                            "cached": result.cached,
                        }
                        for result in mine
                    ],
                    "condition": jobs[index].payload["condition"],
                    "display_name": self.taxonomy.display_name(jobs[index].payload["condition"]),
                    "skin_tone": jobs[index].payload["skin_tone"],
                    "model_id": generator.model,
                    "latency_ms": latency,
                }
        return [outcome for outcome in outcomes if outcome is not None]

    def _plan(self, job: JobView) -> tuple[list[Request], list[int], str | None]:
        """The requests and seeds of one references job, and the masker that drew its mask (or None)."""
        payload, settings = job.payload, self.settings
        inpaint = bool(payload.get("inpaint"))
        generator = self.inpainter if inpaint else self.generator
        if generator is None:
            raise SkinGenError(f"this worker has no {'inpainting' if inpaint else 'text-to-image'} model")
        condition = self.taxonomy.resolve(payload["condition"], "references job")
        seeds = list(payload["seeds"])
        prompts = self.prompts.variations(
            condition, len(seeds), skin_tone=payload["skin_tone"], trigger=settings.trigger
        )
        photo = decode_png(job.inputs["photo"]) if "photo" in job.inputs else None
        if (generator.ip_adapter is not None or inpaint) and photo is None:
            raise SkinGenError("photo: this worker conditions references on the user's photo; none was sent")
        mask, mask_source = None, None
        if inpaint:
            assert self.masker is not None and photo is not None
            mask, mask_source = (
                self.masker(photo, self.taxonomy.display_name(condition)),
                self.masker.model_id,
            )
        requests = [
            Request(
                prompt=prompt.prompt,
                negative_prompt=prompt.negative_prompt,
                steps=settings.steps,
                guidance=settings.guidance,
                width=settings.width,
                height=settings.height,
                ip_adapter_image=photo if generator.ip_adapter is not None else None,
                image=photo.resize((settings.width, settings.height)) if inpaint and photo else None,
                mask_image=mask.resize((settings.width, settings.height)) if mask is not None else None,
                strength=settings.strength,
            )
            for prompt in prompts
        ]
        return requests, seeds, mask_source


def _each(run: Callable[[JobView], Outcome]) -> Handler:
    """A handler that runs jobs one by one; a model or input error fails that job with its code."""

    def handle(jobs: list[JobView]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for job in jobs:
            try:
                outcomes.append(run(job))
            except ChatEndpointError as exc:
                outcomes.append(JobFailure(exc.code, str(exc), retry=exc.retryable))
            except (FormatError, OSError, KeyError) as exc:
                outcomes.append(JobFailure("bad_request", f"{type(exc).__name__}: {exc}"))
        return outcomes

    return handle


def _since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
