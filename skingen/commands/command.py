"""What a ``skingen`` command is for the dispatcher: ``check`` (flags → frozen config) then ``run(config)``; and
the one place a missing ``ml`` extra becomes an instruction instead of a traceback.

The models' packages (torch, diffusers, transformers, peft, …) are the optional ``ml`` extra, so an install for
the study server or the analysis has none of them; a command that needs one says which extra to install and
exits 2 (:class:`MissingExtraError`), as argparse does for a command line that cannot run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

ML_EXTRA = "pip install 'skingen-study[ml]'"
# The import names of the ml extra's packages ([project.optional-dependencies] ml in pyproject.toml; a test
# keeps the two equal). Failing to import one of them means the extra is missing, not that skingen is broken.
ML_MODULES = frozenset(
    {
        "torch",
        "transformers",
        "diffusers",
        "peft",
        "accelerate",
        "safetensors",
        "huggingface_hub",
        "imagehash",
        "plotly",
        "scipy",
        "requests",
    }
)
NEEDS_ML = f"Needs the ml extra (torch, diffusers, transformers, peft): {ML_EXTRA}"

ConfigT = TypeVar("ConfigT")


class MissingExtraError(Exception):
    """A command needs a package of the ``ml`` extra that is not installed; the message says what to install."""


@dataclass(frozen=True)
class Command(Generic[ConfigT]):
    """A parser's handler (``set_defaults(handler=Command(...))``): ``prog`` names it in messages."""

    prog: str
    check: Callable[[argparse.Namespace], ConfigT]
    run: Callable[[ConfigT], int]

    def __call__(self, args: argparse.Namespace) -> int:
        try:
            return self.run(self.check(args))
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").partition(".")[0]
            if missing not in ML_MODULES:
                raise
            raise MissingExtraError(
                f"{self.prog} needs the ml extra, which is not installed (no module {missing!r}): {ML_EXTRA}"
            ) from exc


def register(
    parser: argparse.ArgumentParser,
    check: Callable[[argparse.Namespace], ConfigT],
    run: Callable[[ConfigT], int],
) -> None:
    """Make ``parser``'s command ``check`` then ``run`` (what :func:`skingen.cli.main` calls)."""
    parser.set_defaults(handler=Command(parser.prog, check, run))
