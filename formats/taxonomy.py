"""The skin-condition taxonomy (``data/taxonomy.yaml``): conditions, their names, and the known conditions
outside it.

Names are looked up exactly here (:meth:`Taxonomy.lookup`, :meth:`Taxonomy.resolve`); reading a model's free
text onto the taxonomy (negation, hedging, differentials) is :mod:`skingen.diagnosis.reading`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from formats.errors import FormatError

UNKNOWN = "unknown"


class TaxonomyError(FormatError):
    """The taxonomy file or a condition id is wrong; the message names the file or id."""


DEFAULT_TAXONOMY = Path(__file__).parent / "data" / "taxonomy.yaml"


@dataclass(frozen=True)
class SkinCondition:
    id: str
    display_name: str
    synonyms: tuple[str, ...]
    description: str
    morphology: str
    body_sites: tuple[str, ...]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


class Taxonomy:
    """An ordered set of :class:`SkinCondition`, loaded from YAML."""

    def __init__(self, conditions: list[SkinCondition], other_conditions: tuple[str, ...] = ()) -> None:
        ids = [c.id for c in conditions]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise TaxonomyError(f"taxonomy: duplicate condition id(s): {', '.join(duplicates)}")
        if UNKNOWN in ids:
            raise TaxonomyError(f"taxonomy: {UNKNOWN!r} is reserved and cannot be a condition id")
        self._conditions = {c.id: c for c in conditions}
        # Every whole name → its condition (the first condition listing it), for labels that must match
        # exactly (dataset labels, see lookup).
        self._names: dict[str, str] = {}
        for c in conditions:
            for name in (c.id, c.display_name, *c.synonyms):
                self._names.setdefault(" ".join(_words(name)), c.id)
        # Known conditions outside the taxonomy, so that a specific name ("seborrheic dermatitis") is not read
        # as the broader one inside it ("dermatitis" → eczema); a name the taxonomy has is the taxonomy's.
        self.other_conditions = tuple(
            dict.fromkeys(n.lower() for n in other_conditions if " ".join(_words(n)) not in self._names)
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> Taxonomy:
        """Read a taxonomy YAML file (the packaged one by default).

        ``other_conditions`` (known conditions outside the taxonomy) default to the packaged file's list, so
        that a custom taxonomy without the list still keeps specific names apart from broad ones.
        """
        path = Path(path) if path is not None else DEFAULT_TAXONOMY
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            other = data.get("other_conditions")
            if other is None and path != DEFAULT_TAXONOMY:
                other = yaml.safe_load(DEFAULT_TAXONOMY.read_text(encoding="utf-8"))["other_conditions"]
            if not isinstance(other, list) or not all(isinstance(name, str) for name in other):
                raise TypeError(f"other_conditions must be a list of names, got {other!r}")
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
            raise TaxonomyError(f"taxonomy file not readable: {path} ({exc})") from exc
        except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
            raise TaxonomyError(f"taxonomy file {path} is malformed: {exc!r}") from exc
        return cls(conditions, tuple(other))

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
            raise TaxonomyError(
                f"unknown condition id {condition_id!r}; known: {', '.join(self._conditions)}"
            ) from None

    def names(self) -> Iterator[tuple[str, str]]:
        """Every (name, condition id): ids, display names and synonyms, in the taxonomy's order."""
        for c in self:
            for name in (c.id, c.display_name, *c.synonyms):
                yield name, c.id

    def resolve(self, value: str, where: str) -> str:
        """A researcher-written condition (id, name or synonym, any case) as a taxonomy id; ``where`` names the
        source.

        A value that is no condition's name is an error, not a silent "unknown" (write ``unknown`` to mean
        unknown), and not the nearest condition: "seborrheic dermatitis" is not eczema.
        """
        value = value.strip()
        if value in self or value == UNKNOWN:
            return value
        condition = self.lookup(value)
        if condition is None:
            raise TaxonomyError(
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
