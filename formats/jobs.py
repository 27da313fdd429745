"""The jobs of interactive SkinGEN: what the app asks a worker for, and what it gets back. Torch-free.

The app (study/live.py) builds requests with these functions and reads results with them; the worker
(skingen/serving.py) runs them. Three kinds:

- ``diagnose``: a photo → ``Diagnosis.to_dict()`` + ``names`` (display name of each differential condition)
  + ``latency_ms``;
- ``chat``: a photo, the conversation so far and a question → ``answer``, the ``condition`` it names
  (taxonomy id, ``"unknown"`` when it names none), ``display_name``, ``model_id``, ``latency_ms``;
- ``references``: a condition, a skin type, seeds (and optionally the photo, for IP-Adapter conditioning or
  inpainting into it) → ``images``: one ``{"key", "png", "provenance", "mask", "cached"}`` per seed (PNG as
  base64), ``condition``, ``display_name``, ``skin_tone``, ``model_id``, ``latency_ms``.

Photos travel in the job's ``inputs``, which the queue clears when the job ends (docs/workers.md).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

DIAGNOSE, CHAT, REFERENCES = "diagnose", "chat", "references"
KINDS = (DIAGNOSE, CHAT, REFERENCES)
# Failure codes after which a calm "please try again" is the right message (the model was busy or away; the
# job ran past its time to live, or its page was left). db/jobs.py names the last three.
RETRY_LATER = frozenset(
    {"timeout", "unreachable", "server_error", "lease_expired", "worker_error", "expired", "abandoned"}
)


@dataclass(frozen=True)
class JobRequest:
    """What to submit to the queue (db.jobs.JobQueue.submit takes these fields)."""

    kind: str
    payload: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    batch_key: str = ""


def encode_png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def decode_png(data: str) -> Image.Image:
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        return image.convert("RGB")


def diagnose_request(photo: Image.Image) -> JobRequest:
    return JobRequest(DIAGNOSE, {}, {"photo": encode_png(photo)})


def chat_request(photo: Image.Image, history: Sequence[tuple[str, str]], question: str) -> JobRequest:
    """A follow-up question; ``history`` holds the earlier (question, answer) pairs, the diagnosis first."""
    if not question.strip():
        raise ValueError("question: must not be empty")
    payload = {"history": [list(turn) for turn in history], "question": question.strip()}
    return JobRequest(CHAT, payload, {"photo": encode_png(photo)})


def references_request(
    condition: str,
    skin_tone: str,
    *,
    count: int,
    first_seed: int = 0,
    photo: Image.Image | None = None,
    inpaint: bool = False,
) -> JobRequest:
    """``count`` reference images of ``condition`` on skin type ``skin_tone``.

    ``photo`` is given to workers that condition on it (IP-Adapter) and is required with ``inpaint``
    (the condition painted into the photo, in the area an automatic mask finds). Every references job of a
    kind shares one batch key: a worker's model and settings are fixed, so it can batch any of them.
    """
    if count < 1:
        raise ValueError(f"count: must be ≥ 1, got {count}")
    if inpaint and photo is None:
        raise ValueError("photo: required to inpaint into it")
    payload = {
        "condition": condition,
        "skin_tone": skin_tone,
        "seeds": list(range(first_seed, first_seed + count)),
        "inpaint": inpaint,
    }
    inputs = {"photo": encode_png(photo)} if photo is not None else {}
    return JobRequest(
        REFERENCES, payload, inputs, batch_key=f"{REFERENCES}:{'inpaint' if inpaint else 'text'}"
    )
