"""The structured diagnosis every backend returns, and the interface they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

from formats.bundle import AIOutput, DifferentialEntry
from formats.taxonomy import UNKNOWN, Taxonomy
from skingen.diagnosis.reading import Mention


@dataclass(frozen=True)
class Diagnosis:
    """A model's answer: top condition (taxonomy id or ``"unknown"``), differential, rationale, raw output.

    ``evidence`` holds, for a text answer, every condition name found in it with what the text says about it
    (:mod:`skingen.diagnosis.reading`): why the answer was read as ``condition``.
    """

    condition: str
    display_name: str
    differential: tuple[tuple[str, float], ...]
    rationale: str
    raw_output: str
    model_id: str
    evidence: tuple[Mention, ...] = ()

    @classmethod
    def from_ranking(
        cls,
        taxonomy: Taxonomy,
        ranked: list[tuple[str, float]],
        *,
        rationale: str,
        raw_output: str,
        model_id: str,
        evidence: tuple[Mention, ...] = (),
    ) -> Diagnosis:
        """Top condition = first of ``ranked`` (``(condition_id, score)``, best first); empty → unknown."""
        condition = ranked[0][0] if ranked else UNKNOWN
        return cls(
            condition=condition,
            display_name=taxonomy.display_name(condition),
            differential=tuple((c, round(float(s), 6)) for c, s in ranked),
            rationale=rationale,
            raw_output=raw_output,
            model_id=model_id,
            evidence=evidence,
        )

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["differential"] = [{"condition": c, "score": s} for c, s in self.differential]
        data["evidence"] = [mention.to_dict() for mention in self.evidence]
        return data

    def ai_output(self, text: str | None = None) -> AIOutput:
        """The bundle's view of this diagnosis; ``text`` overrides the default sentence."""
        if text is None:
            text = (
                "The AI could not match this image to a known condition."
                if self.condition == UNKNOWN
                else f"The AI's most likely diagnosis is {self.display_name}."
            )
        return AIOutput(
            skin_condition=self.condition,
            display_name=self.display_name,
            text=text,
            rationale=self.rationale,
            differential=tuple(DifferentialEntry(skin_condition=c, score=s) for c, s in self.differential),
            model_id=self.model_id,
        )


@runtime_checkable
class Diagnoser(Protocol):
    """Anything that diagnoses a skin photo; ``case_id`` lets fixed (manifest) backends look cases up."""

    model_id: str

    def diagnose(self, image: Image.Image, case_id: str = "") -> Diagnosis: ...


# One exchange of a conversation about a photo: (question, answer).
Turn = tuple[str, str]


@runtime_checkable
class ChatDiagnoser(Diagnoser, Protocol):
    """A diagnoser that also answers follow-up questions about the photo (a VLM, local or behind an endpoint)."""

    def ask(self, image: Image.Image, question: str | None = None, history: Sequence[Turn] = ()) -> str: ...


def rank_weights(count: int) -> list[float]:
    """Scores for a differential that a model gave only as an order: 1/rank, normalised to sum to 1."""
    raw = [1.0 / (rank + 1) for rank in range(count)]
    return [w / sum(raw) for w in raw]
