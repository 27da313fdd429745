"""What produced an image, and a cache keyed by it, so no image is generated twice.

The cache key is the SHA-256 of the record's canonical JSON: any change of model, LoRA file, prompt, seed,
settings or library version is a different key. Torch-free (the bundle reader may inspect provenance).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, ConfigDict

_LIBRARIES = ("skingen-study", "torch", "diffusers", "transformers", "peft", "safetensors")


class AdapterRecord(BaseModel):
    """A weights file applied on top of the base model (LoRA or IP-Adapter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str
    scale: float


class ImageLabels(BaseModel):
    """What an image is meant to show: read by ``skingen evaluate``, not part of the cache key.

    The pixels depend on the condition and skin tone only through the prompt, which the key holds; the labels
    are stored so that evaluation need not parse them back out of the prompt.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    condition: str | None = None
    skin_tone: str | None = None


class ProvenanceRecord(BaseModel):
    """Everything that determines one generated image's pixels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    model_fingerprint: str
    pipeline: str
    loras: tuple[AdapterRecord, ...] = ()
    ip_adapter: AdapterRecord | None = None
    ip_adapter_image_sha256: str | None = None
    init_image_sha256: str | None = None
    mask_sha256: str | None = None
    strength: float | None = None
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    scheduler: str
    width: int
    height: int
    device: str
    dtype: str
    versions: dict[str, str]

    def key(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def to_json(self, labels: ImageLabels | None = None) -> str:
        """The record plus its key, a timestamp and the image's ``labels`` (neither is part of the key)."""
        data: dict[str, object] = {
            "key": self.key(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if labels is not None:
            data.update(condition=labels.condition, skin_tone=labels.skin_tone)
        data.update(self.model_dump(mode="json"))
        return json.dumps(data, indent=2, sort_keys=False) + "\n"


def library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def model_fingerprint(model: str) -> str:
    """Cheap identity of a model directory: hash of its config files and every file's name and size.

    Hashing multi-GB weights on every run would cost more than generating; names, sizes and configs change
    whenever a different model is put at the same path. A hub id fingerprints as itself.
    """
    root = Path(model)
    if not root.is_dir():
        return hashlib.sha256(model.encode()).hexdigest()
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        digest.update(f"{relative}:{path.stat().st_size}\n".encode())
        if path.suffix == ".json":
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    Path(tmp).replace(target)


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_image(
    image: Image.Image, record: ProvenanceRecord, png_path: Path, labels: ImageLabels | None = None
) -> Path:
    """Write ``png_path`` and its provenance JSON beside it (same stem, ``.json``); returns the JSON path."""
    json_path = png_path.with_suffix(".json")
    _write_atomic(png_path, _png_bytes(image))
    _write_atomic(json_path, record.to_json(labels).encode())
    return json_path


class ImageCache:
    """A directory of ``<key>.png`` + ``<key>.json``; entries are written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.png"

    def get(self, record: ProvenanceRecord) -> Image.Image | None:
        path = self.path(record.key())
        if not path.is_file():
            return None
        with Image.open(path) as image:
            return image.convert("RGB")

    def put(self, image: Image.Image, record: ProvenanceRecord) -> None:
        save_image(image, record, self.path(record.key()))


def default_cache_dir() -> Path:
    """``$SKINGEN_CACHE``, else ``$XDG_CACHE_HOME/skingen/images`` (``~/.cache/skingen/images``)."""
    if os.environ.get("SKINGEN_CACHE"):
        return Path(os.environ["SKINGEN_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "skingen" / "images"
