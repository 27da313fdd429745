"""What the study engine refuses, and why: one exception class per reason.

A refusal means nothing was written; its message can be shown to the participant (the app does), and the
subclasses let the app pick the page (an invalid link, a stale step, a withdrawn participant).
"""

from __future__ import annotations

from study.items.answers import REQUIRED, AnswerProblem


class EngineError(ValueError):
    """A request the engine refuses; nothing was written. The message can be shown to the participant."""


class UnknownToken(EngineError):
    pass


class StepConflict(EngineError):
    """The submitted step is not the participant's current one (tampered, or from a stale page)."""


class AnswerLocked(StepConflict):
    """A changed answer for the first half of a judge–advisor trial, sent after the AI's advice was shown:
    the answer given before the advice is kept as it was stored (the comparison it exists for)."""


class Withdrawn(EngineError):
    """The participant withdrew (``skingen-study withdraw``): their link opens nothing any more."""


class ResumeRefused(EngineError):
    """The recruiting link names an enrolled participant, but the protocol's ``resume_requires`` parameters
    (e.g. the platform's per-attempt ``SESSION_ID``) differ from the ones recorded: not taken over."""


class TurnRefused(EngineError):
    """A turn with the live model that may not be taken; ``code``: not_interactive, limit_reached, not_current,
    before_advice (the first half of a judge–advisor trial)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ConsentRefused(EngineError):
    """Not every consent statement was ticked; ``errors`` maps each missing statement id → ``required``."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        self.errors: dict[str, AnswerProblem] = dict.fromkeys(missing, REQUIRED)
        super().__init__(
            "please tick every consent statement to take part (missing: " + ", ".join(missing) + ")"
        )
