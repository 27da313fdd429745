"""The one error type the pipeline raises for things a user can fix (bad path, offline hub id, bad image).

It is a :class:`formats.errors.FormatError`, as the shared formats' own errors (a bad taxonomy id) are, so a
caller catches that one base; the CLI prints the message and exits non-zero, so every message names the path,
id or argument at fault.
"""

from __future__ import annotations

from formats.errors import FormatError


class SkinGenError(FormatError):
    """A user-actionable problem; the message says what is wrong and with which file, model or argument."""
