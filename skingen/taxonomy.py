"""The skin-condition taxonomy (``data/taxonomy.yaml``) and mapping of free model text onto it.

A model's free text is mapped by exact synonym phrases first and close misspellings second; text that names
no condition maps to ``"unknown"`` rather than to a nearest-but-wrong class.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from skingen.errors import SkinGenError

UNKNOWN = "unknown"
DEFAULT_TAXONOMY = Path(__file__).parent / "data" / "taxonomy.yaml"
# A synonym preceded by one of these (within two words) is a ruled-out condition, not a diagnosis.
_NEGATIONS = frozenset({"not", "no", "without", "unlikely", "excluding", "exclude", "excluded", "nor"})
_FUZZY_CUTOFF = 0.88  # "psoriasys" → psoriasis (0.89); "dermatosis" ↛ dermatitis (0.80)
_FUZZY_MIN_LENGTH = 5  # short synonyms (scc, bcc, mole) only match exactly


@dataclass(frozen=True)
class SkinCondition:
    id: str
    display_name: str
    synonyms: tuple[str, ...]
    description: str
    morphology: str
    body_sites: tuple[str, ...]


@dataclass(frozen=True)
class Mention:
    """Where a condition is named in a text: ``position`` is the word index, ``term`` the words found."""

    condition: str
    term: str
    position: int
    exact: bool


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


class Taxonomy:
    """An ordered set of :class:`SkinCondition`, loaded from YAML."""

    def __init__(self, conditions: list[SkinCondition]) -> None:
        ids = [c.id for c in conditions]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise SkinGenError(f"taxonomy: duplicate condition id(s): {', '.join(duplicates)}")
        if UNKNOWN in ids:
            raise SkinGenError(f"taxonomy: {UNKNOWN!r} is reserved and cannot be a condition id")
        self._conditions = {c.id: c for c in conditions}
        # Longest phrases first, so "contact dermatitis" wins over the "dermatitis" inside it.
        self._phrases = sorted(
            ((tuple(_words(s)), c.id) for c in conditions for s in (*c.synonyms, c.display_name, c.id)),
            key=lambda item: -len(item[0]),
        )
        # Every whole name → its condition (the first condition listing it), for labels that must match
        # exactly (dataset labels, see lookup).
        self._names: dict[str, str] = {}
        for c in conditions:
            for name in (c.id, c.display_name, *c.synonyms):
                self._names.setdefault(" ".join(_words(name)), c.id)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Taxonomy:
        """Read a taxonomy YAML file (the packaged one by default)."""
        path = Path(path) if path is not None else DEFAULT_TAXONOMY
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            conditions = [
                SkinCondition(
                    id=item["id"],
                    display_name=item["display_name"],
                    synonyms=tuple(s.lower() for s in item.get("synonyms", ())),
                    description=item.get("description", ""),
                    morphology=item.get("morphology", ""),
                    body_sites=tuple(item.get("body_sites", ())) or ("skin",),
                )
                for item in data["conditions"]
            ]
        except OSError as exc:
            raise SkinGenError(f"taxonomy file not readable: {path} ({exc})") from exc
        except (yaml.YAMLError, KeyError, TypeError) as exc:
            raise SkinGenError(f"taxonomy file {path} is malformed: {exc!r}") from exc
        return cls(conditions)

    def __iter__(self) -> Iterator[SkinCondition]:
        return iter(self._conditions.values())

    def __len__(self) -> int:
        return len(self._conditions)

    def __contains__(self, condition_id: object) -> bool:
        return condition_id in self._conditions

    @property
    def ids(self) -> list[str]:
        return list(self._conditions)

    def get(self, condition_id: str) -> SkinCondition:
        try:
            return self._conditions[condition_id]
        except KeyError:
            raise SkinGenError(
                f"unknown condition id {condition_id!r}; known: {', '.join(self._conditions)}"
            ) from None

    def resolve(self, value: str, where: str) -> str:
        """A researcher-written condition (id, name or synonym) as a taxonomy id; ``where`` names the source.

        Unlike :meth:`match`, a value that names no condition is an error, not a silent "unknown" (write
        ``unknown`` to mean unknown).
        """
        value = value.strip()
        if value in self or value == UNKNOWN:
            return value
        condition = self.match(value)
        if condition == UNKNOWN:
            raise SkinGenError(
                f"{where}: condition {value!r} is not in the taxonomy (known: {', '.join(self.ids)})"
            )
        return condition

    def lookup(self, label: str) -> str | None:
        """The condition whose id, display name or synonym *is* ``label``, or None; never a near match.

        Case, punctuation and separators are ignored ("Basal-Cell_Carcinoma" → basal_cell_carcinoma), but the
        words must be the same: "melanoma-in-situ" names no condition here although it mentions melanoma. Used
        for dataset labels, where a near class would silently mislabel training images.
        """
        return self._names.get(" ".join(_words(label)))

    def display_name(self, condition_id: str) -> str:
        return "Unknown" if condition_id == UNKNOWN else self.get(condition_id).display_name

    def mentions(self, text: str) -> list[Mention]:
        """Conditions named in ``text``, first mention first, one per condition, negated mentions skipped."""
        words = _words(text)
        taken = [False] * len(words)
        found: dict[str, Mention] = {}
        for phrase, condition_id in self._phrases:
            n = len(phrase)
            for start in range(len(words) - n + 1):
                if tuple(words[start : start + n]) != phrase or any(taken[start : start + n]):
                    continue
                taken[start : start + n] = [True] * n
                if _NEGATIONS.isdisjoint(words[max(0, start - 2) : start]):
                    _keep_first(found, Mention(condition_id, " ".join(phrase), start, exact=True))
        if not found:
            for mention in self._fuzzy_mentions(words):
                _keep_first(found, mention)
        return sorted(found.values(), key=lambda m: m.position)

    def _fuzzy_mentions(self, words: list[str]) -> Iterator[Mention]:
        for phrase, condition_id in self._phrases:
            target = " ".join(phrase)
            if len(target) < _FUZZY_MIN_LENGTH:
                continue
            for start in range(len(words) - len(phrase) + 1):
                candidate = " ".join(words[start : start + len(phrase)])
                if _NEGATIONS.isdisjoint(words[max(0, start - 2) : start]) and (
                    difflib.SequenceMatcher(None, candidate, target).ratio() >= _FUZZY_CUTOFF
                ):
                    yield Mention(condition_id, candidate, start, exact=False)

    def match(self, text: str) -> str:
        """The condition ``text`` names first, or ``"unknown"`` when it names none."""
        mentions = self.mentions(text)
        return mentions[0].condition if mentions else UNKNOWN


def _keep_first(found: dict[str, Mention], mention: Mention) -> None:
    current = found.get(mention.condition)
    if current is None or mention.position < current.position:
        found[mention.condition] = mention
