"""The diagnoser backends every command takes, as flags and as ``KIND:SOURCE`` specs, and the one factory.

``skingen diagnose``, ``bundle build`` and ``worker`` name their diagnoser with one flag of the group that
:func:`add_diagnoser_options` adds (``--vlm``, ``--clip``, ``--classifier``, ``--diagnoses``,
``--chat-endpoint``); the closed-loop judge of ``skingen evaluate`` and ``bundle build --evaluate`` (and a grid's
``base.diagnoser``) is a spec with the same backends (``vlm:PATH``, ``clip:PATH``, ``classifier:PATH``,
``fixed:CSV``, ``chat:[MODEL@]URL``). Both are read into a :class:`DiagnoserSpec` and built by
:func:`build_diagnoser`, so a backend added to :data:`BACKENDS` reaches every command, and every error names
the flag it came from. Torch-free: a backend's module is imported when it is built.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

from formats.errors import FormatError
from formats.taxonomy import Taxonomy
from skingen.diagnosis.base import Diagnoser
from skingen.errors import SkinGenError

DEFAULT_CHAT_MODEL = "default"


@dataclass(frozen=True)
class Backend:
    kind: str  # the spec's prefix
    flag: str
    dest: str  # the flag's attribute in the parsed arguments
    metavar: str
    help: str


BACKENDS = (
    Backend("vlm", "--vlm", "vlm", "PATH|ID", "image-text-to-text VLM (LLaVA-style), local path or hub id"),
    Backend(
        "clip", "--clip", "clip", "PATH|ID", "CLIP-style model: zero-shot over the taxonomy's descriptions"
    ),
    Backend(
        "classifier",
        "--classifier",
        "classifier",
        "PATH|ID",
        "image classifier (AutoModelForImageClassification) whose config id2label names taxonomy conditions",
    ),
    Backend(
        "fixed",
        "--diagnoses",
        "diagnoses",
        "CSV",
        "fixed diagnoses, columns case_id,condition[,rationale] (case_id: the case, or the image file's stem)",
    ),
    Backend(
        "chat",
        "--chat-endpoint",
        "chat_endpoint",
        "URL",
        "a VLM behind an OpenAI-compatible server (vLLM, TGI, Ollama), e.g. http://gpu1:8000 (see --chat-model)",
    ),
)
_BY_KIND = {backend.kind: backend for backend in BACKENDS}
SPEC_FORMS = "vlm:PATH, clip:PATH, classifier:PATH, fixed:CSV or chat:[MODEL@]URL"
_CHAT = re.compile(r"^(?:(?P<model>.+)@)?(?P<url>https?://.+)$")


@dataclass(frozen=True)
class DiagnoserSpec:
    """Which backend, from where (a path, hub id, CSV or URL), and the flag or field that said so."""

    kind: str
    source: str
    where: str
    chat_model: str = DEFAULT_CHAT_MODEL

    @classmethod
    def parse(cls, spec: str, where: str) -> DiagnoserSpec:
        """``KIND:SOURCE`` (``chat:[MODEL@]URL``), checked without loading anything."""
        kind, _, source = spec.partition(":")
        if kind not in _BY_KIND or not source:
            raise SkinGenError(f"{where} {spec!r}: expected {SPEC_FORMS}")
        if kind != "chat":
            return cls(kind, source, where)
        match = _CHAT.match(source)
        if match is None:
            raise SkinGenError(f"{where} {spec!r}: expected chat:[MODEL@]URL with an http:// or https:// URL")
        return cls(kind, match["url"], where, match["model"] or DEFAULT_CHAT_MODEL)

    def __str__(self) -> str:
        if self.kind == "chat":
            return f"chat:{self.chat_model}@{self.source}"
        return f"{self.kind}:{self.source}"


@dataclass(frozen=True)
class DiagnoserSettings:
    """Options shared by the backends (each uses those that apply to it)."""

    device: str | None = None
    dtype: str | None = None
    max_new_tokens: int = 160
    chat_timeout: float = 60.0


def add_diagnoser_options(parser: argparse.ArgumentParser, *, required: bool, description: str) -> None:
    """One flag per backend (at most one given, or exactly one when ``required``) and their settings."""
    group = parser.add_argument_group("diagnoser", description)
    backends = group.add_mutually_exclusive_group(required=required)
    for backend in BACKENDS:
        backends.add_argument(backend.flag, dest=backend.dest, metavar=backend.metavar, help=backend.help)
    group.add_argument(
        "--chat-model", help=f"model name sent to --chat-endpoint (default {DEFAULT_CHAT_MODEL!r})"
    )
    add_diagnoser_settings(group)


def add_diagnoser_settings(group: argparse._ActionsContainer) -> None:
    """The settings of a VLM or chat backend (a command with only a judge spec takes these alone)."""
    defaults = DiagnoserSettings()
    group.add_argument(
        "--max-new-tokens",
        type=int,
        default=defaults.max_new_tokens,
        help="VLM and chat answer length in tokens (default %(default)s)",
    )
    group.add_argument(
        "--chat-timeout",
        type=float,
        default=defaults.chat_timeout,
        help="seconds to wait for a chat endpoint's answer (default %(default)s)",
    )


def add_judge_option(group: argparse._ActionsContainer, *, default: str) -> None:
    """``--diagnoser KIND:SOURCE``: the closed loop's judge; ``default`` says what happens without it."""
    group.add_argument(
        "--diagnoser",
        metavar="KIND:SOURCE",
        help=f"re-diagnose every generated image with this model (closed loop): {SPEC_FORMS}; {default}",
    )


def diagnoser_spec(args: argparse.Namespace) -> DiagnoserSpec | None:
    """The backend flag given (None: none), checked before any model loads."""
    given = [(b, getattr(args, b.dest)) for b in BACKENDS if getattr(args, b.dest) is not None]
    if args.chat_model is not None and not (given and given[0][0].kind == "chat"):
        raise SkinGenError("--chat-model: only used with --chat-endpoint")
    if not given:
        return None
    backend, source = given[0]
    if backend.kind == "chat":
        if not source.startswith(("http://", "https://")):
            raise SkinGenError(f"{backend.flag} {source!r}: expected an http:// or https:// URL")
        return DiagnoserSpec("chat", source, backend.flag, args.chat_model or DEFAULT_CHAT_MODEL)
    return DiagnoserSpec(backend.kind, source, backend.flag)


def judge_spec(args: argparse.Namespace) -> DiagnoserSpec | None:
    """``--diagnoser``'s spec (None without it), checked before any model loads."""
    return None if args.diagnoser is None else DiagnoserSpec.parse(args.diagnoser, "--diagnoser")


def diagnoser_settings(args: argparse.Namespace) -> DiagnoserSettings:
    """The settings flags, checked (``skingen evaluate`` has no ``--dtype``: the device's default)."""
    for flag, value in (("--max-new-tokens", args.max_new_tokens), ("--chat-timeout", args.chat_timeout)):
        if value <= 0:
            raise SkinGenError(f"{flag}: must be > 0, got {value}")
    return DiagnoserSettings(
        device=args.device,
        dtype=getattr(args, "dtype", None),
        max_new_tokens=args.max_new_tokens,
        chat_timeout=args.chat_timeout,
    )


def build_diagnoser(spec: DiagnoserSpec, taxonomy: Taxonomy, settings: DiagnoserSettings) -> Diagnoser:
    """Load the backend ``spec`` names; a failure names the flag (or field) it came from."""
    try:
        return _build(spec, taxonomy, settings)
    except FormatError as exc:
        raise SkinGenError(f"{spec.where}: {exc}") from exc


def _build(spec: DiagnoserSpec, taxonomy: Taxonomy, settings: DiagnoserSettings) -> Diagnoser:
    device, dtype = settings.device, settings.dtype
    if spec.kind == "vlm":
        from skingen.diagnosis.vlm import VlmDiagnoser

        return VlmDiagnoser(
            spec.source, taxonomy, max_new_tokens=settings.max_new_tokens, device=device, dtype=dtype
        )
    if spec.kind == "clip":
        from skingen.diagnosis.clip import ClipDiagnoser

        return ClipDiagnoser(spec.source, taxonomy, device=device, dtype=dtype)
    if spec.kind == "classifier":
        from skingen.diagnosis.classifier import ClassifierDiagnoser

        return ClassifierDiagnoser(spec.source, taxonomy, device=device, dtype=dtype)
    if spec.kind == "fixed":
        from skingen.diagnosis.fixed import FixedDiagnoser

        return FixedDiagnoser(spec.source, taxonomy)
    from skingen.diagnosis.openai_chat import OpenAIChatDiagnoser

    return OpenAIChatDiagnoser(
        spec.source,
        spec.chat_model,
        taxonomy,
        max_new_tokens=settings.max_new_tokens,
        timeout=settings.chat_timeout,
    )
