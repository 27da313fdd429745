"""Diagnosis by a transformers image-text-to-text VLM (LLaVA-style), its free text mapped onto the taxonomy.

The model is asked, SkinGPT-style, for a diagnosis, a differential and its reasoning. The answer is read with
:func:`parse_answer` (negation, hedging and differentials: :mod:`skingen.diagnosis.reading`): a condition the
text does not pick is never guessed (→ ``"unknown"``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from PIL import Image

from formats.taxonomy import Taxonomy
from skingen.devices import resolve_device, resolve_dtype
from skingen.diagnosis.base import Diagnosis, Turn, rank_weights
from skingen.diagnosis.reading import read_diagnosis
from skingen.errors import SkinGenError
from skingen.sources import resolve_model

DEFAULT_QUESTION = (
    "You are a dermatologist. Look at this skin photo. Answer in three lines: "
    "'Diagnosis: <the most likely condition>', 'Differential: <other likely conditions, most likely first>', "
    "'Reasoning: <the visible features that support the diagnosis>'."
)
_REASONING = re.compile(
    r"^\W*(?:reasoning|rationale)\W*:\W*(.*?)(?=^\W*(?:diagnosis|differential)\b[^\n:]*:|\Z)",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)


def parse_answer(text: str, taxonomy: Taxonomy, model_id: str) -> Diagnosis:
    """Read a free-text answer onto the taxonomy: the pick first, then the conditions it still considers, with
    1/rank scores (a model gives an order, not probabilities); the rationale is the ``Reasoning:`` part, else
    the whole text."""
    reading = read_diagnosis(text, taxonomy)
    reasoning = _REASONING.search(text)
    return Diagnosis.from_ranking(
        taxonomy,
        list(zip(reading.ranked, rank_weights(len(reading.ranked)), strict=True)),
        rationale=(reasoning.group(1).strip() if reasoning else "") or text.strip(),
        raw_output=text,
        model_id=model_id,
        evidence=reading.mentions,
    )


class VlmDiagnoser:
    """Asks a local or hub VLM (``AutoModelForImageTextToText`` + ``AutoProcessor``) about each photo."""

    def __init__(
        self,
        model: str,
        taxonomy: Taxonomy,
        *,
        question: str = DEFAULT_QUESTION,
        max_new_tokens: int = 160,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        source = resolve_model(model, "VLM")
        self.device = resolve_device(device)
        try:
            self.processor = AutoProcessor.from_pretrained(source)
            self.model = (
                AutoModelForImageTextToText.from_pretrained(source, dtype=resolve_dtype(self.device, dtype))
                .to(self.device)
                .eval()
            )
        except (OSError, ValueError, KeyError) as exc:
            raise SkinGenError(f"VLM {model}: cannot load ({exc})") from exc
        if getattr(self.processor, "chat_template", None) is None:
            raise SkinGenError(f"VLM {model}: its processor has no chat template, so it cannot be prompted")
        self.model_id = model
        self.taxonomy = taxonomy
        self.question = question
        self.max_new_tokens = max_new_tokens
        self._torch = torch

    def ask(self, image: Image.Image, question: str | None = None, history: Sequence[Turn] = ()) -> str:
        """The model's greedy (deterministic) answer to ``question`` (default: the diagnosis question) about
        ``image``, after the earlier turns of ``history``."""
        questions = [q for q, _ in history] + [question or self.question]
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": questions[0]}]}]
        for (_, answer), follow_up in zip(history, questions[1:], strict=True):
            messages += [
                {"role": "assistant", "content": [{"type": "text", "text": answer}]},
                {"role": "user", "content": [{"type": "text", "text": follow_up}]},
            ]
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = self.processor(images=image, text=prompt, return_tensors="pt").to(self.device)
        with self._torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return self.processor.decode(new_tokens, skip_special_tokens=True).strip()

    def diagnose(self, image: Image.Image, case_id: str = "") -> Diagnosis:
        return parse_answer(self.ask(image), self.taxonomy, self.model_id)
