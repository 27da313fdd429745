"""The questionnaire item kinds, one module each, and their registry: the only list of kinds there is.

A protocol item's ``type`` picks its class from :data:`KINDS` (a pydantic tagged union, :data:`AnyItem`), so
an unknown type is a protocol error naming the field and line. Each class owns its fields and checks, its
answer fields and answer checks, its codebook variables, a bot's answer and its widget
(:class:`~study.items.base.Item`); this module refuses at import a kind that leaves one of them out.

To add a kind: write ``study/items/<kind>.py`` with one :class:`~study.items.base.Item` subclass (copy the
closest kind: ``slider.py`` for a number, ``single_choice.py`` for a coded answer) and add it to
:data:`KINDS` below; docs/protocol.md "Adding an item kind" says what each part is for.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Union, get_args

from pydantic import Field

from study.items.base import Item
from study.items.diagnosis import DiagnosisItem
from study.items.free_text import FreeTextItem
from study.items.likert import LikertItem
from study.items.number import NumberItem
from study.items.single_choice import SingleChoiceItem
from study.items.slider import SliderItem
from study.items.yes_no import YesNoItem

KINDS: tuple[type[Item], ...] = (
    LikertItem,
    SingleChoiceItem,
    YesNoItem,
    FreeTextItem,
    DiagnosisItem,
    NumberItem,
    SliderItem,
)


def kind_name(kind: type[Item]) -> str:
    """The ``type`` a protocol writes for ``kind`` (its ``Literal``)."""
    (name,) = get_args(kind.model_fields["type"].annotation)
    return name


def _complete(kinds: tuple[type[Item], ...]) -> dict[str, type[Item]]:
    """Kinds by name, after checking each implements every part and has a name of its own."""
    by_name: dict[str, type[Item]] = {}
    for kind in kinds:
        if inspect.isabstract(kind):
            missing = sorted(getattr(kind, "__abstractmethods__", ()))
            raise TypeError(f"item kind {kind.__name__} does not implement {missing}")
        name = kind_name(kind)
        if name in by_name:
            raise TypeError(f"item kinds {by_name[name].__name__} and {kind.__name__} share type {name!r}")
        by_name[name] = kind
    return by_name


KIND_NAMES = tuple(_complete(KINDS))
AnyItem = Annotated[Union[KINDS], Field(discriminator="type")]  # noqa: UP007 (a union built from the registry)
"""A protocol item of any registered kind (the field type of every questionnaire)."""
