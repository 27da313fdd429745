"""Loading a protocol: the file's text → a validated :class:`~study.protocol.model.Protocol` with its bundle.

Every problem becomes one :class:`ProtocolError` that lists each offending field by its path
(``questionnaires.post[2].scale.points: …``) and, where known, its line in the file
(:mod:`study.protocol.yaml_lines`); then the bundle the protocol names is loaded and checked against it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from pydantic import ValidationError

from formats.bundle import Bundle, BundleError, BundleManifest, BundleNotFoundError, load_bundle
from study.protocol import yaml_lines
from study.protocol.model import Protocol
from study.texts import declared_languages, validation_context


class ProtocolError(ValueError):
    """A protocol file that cannot be used. ``problems`` holds one line per offending field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid protocol\n  " + "\n  ".join(problems))


class LoadedProtocol:
    """A validated protocol with its source text, content hash and resolved bundle."""

    def __init__(self, protocol: Protocol, text: str, path: Path | None, bundle: Bundle) -> None:
        self.protocol = protocol
        self.text = text
        self.path = path
        self.bundle = bundle
        self._localized: dict[str, LoadedProtocol] = {protocol.languages[0]: self}

    def localized(self, language: str) -> LoadedProtocol:
        """The same protocol with its texts in ``language`` (one of its ``languages``): what a participant
        of that language sees. Ids, codes and steps are the same in every language."""
        if language not in self._localized:
            protocol = parse_protocol(self.text, "<protocol>", language)
            self._localized[language] = LoadedProtocol(protocol, self.text, self.path, self.bundle)
        return self._localized[language]

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def case_ids(self) -> tuple[str, ...]:
        include = self.protocol.cases.include
        if include == "all":
            return tuple(c.case_id for c in self.bundle.manifest.cases)
        return tuple(include)


def parse_protocol(text: str, source: str = "<protocol>", language: str | None = None) -> Protocol:
    """Validate protocol YAML text (no bundle checks), its texts in ``language`` (default: its first)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProtocolError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ProtocolError(source, ["(top level): must be a mapping of protocol sections"])
    languages = declared_languages(data)
    if language is not None and language not in languages:
        raise ValueError(f"language {language!r} is not one of the protocol's languages {list(languages)}")
    try:
        return Protocol.model_validate(data, context=validation_context(languages, language))
    except ValidationError as exc:
        raise ProtocolError(
            source, yaml_lines.problems(exc, yaml_lines.line_index(node) if node else {})
        ) from None


def resolve_bundle(protocol: Protocol, base_dir: Path, source: str) -> Bundle:
    """Load the protocol's bundle (relative to the protocol file) and check the cases it names."""
    path = base_dir / protocol.cases.bundle
    try:
        bundle = load_bundle(path)
    except BundleNotFoundError as exc:
        hint = f" — draw the demo bundle with `skingen-study demo-bundle {_shown(path)}`"
        raise ProtocolError(source, [f"cases.bundle: {exc}{hint if protocol.cases.demo else ''}"]) from None
    except BundleError as exc:
        raise ProtocolError(source, [f"cases.bundle: {exc}"]) from None
    known = {c.case_id for c in bundle.manifest.cases}
    problems = []
    if protocol.cases.include != "all":
        for index, case_id in enumerate(protocol.cases.include):
            if case_id not in known:
                problems.append(f"cases.include[{index}]: case {case_id!r} is not in the bundle")
    n_cases = len(known) if protocol.cases.include == "all" else len(protocol.cases.include)
    if protocol.design == "within" and n_cases < len(protocol.conditions):
        problems.append(f"cases: a within design needs at least {len(protocol.conditions)} cases")
    if protocol.rating and protocol.rating.include_retrieved and bundle.manifest.retrieval is None:
        problems.append(
            "rating.include_retrieved: the bundle has no retrieved images (build it with "
            "`skingen bundle build --retrieve DATA`)"
        )
    if bundle.manifest.retrieval is None:
        for index, condition in enumerate(protocol.conditions):
            if condition.shows("retrieved"):
                problems.append(
                    f"conditions[{index}].references: {condition.id!r} shows retrieved references, but the "
                    f"bundle has none (build it with `skingen bundle build --retrieve DATA`)"
                )
    if problems:
        raise ProtocolError(source, problems)
    return bundle


def _shown(path: Path) -> str:
    """``path`` as the user would type it here: relative to the working directory when inside it."""
    path = path.resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def load_protocol(path: str | Path) -> LoadedProtocol:
    """Read, validate and resolve a protocol file, or raise one :class:`ProtocolError` naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError(str(path), [f"cannot read the file: {exc}"]) from None
    protocol = parse_protocol(text, str(path))
    bundle = resolve_bundle(protocol, path.resolve().parent, str(path))
    return LoadedProtocol(protocol, text, path, bundle)


def load_stored_protocol(text: str, manifest_json: str, bundle_root: str) -> LoadedProtocol:
    """Rebuild a protocol registered in the database (text and bundle manifest as they were at ``init``).

    Exports and analyses use this, so they read the study as it ran, even if the files have moved since.
    """
    protocol = parse_protocol(text, "<protocol stored in the database>")
    bundle = Bundle(Path(bundle_root), BundleManifest.model_validate_json(manifest_json))
    return LoadedProtocol(protocol, text, None, bundle)
