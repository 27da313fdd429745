"""The one error type the pipeline raises for things a user can fix (bad path, offline hub id, bad image).

The CLI prints its message and exits non-zero, so every message names the path, id or argument at fault.
"""

from __future__ import annotations


class SkinGenError(ValueError):
    """A user-actionable problem; the message says what is wrong and with which file, model or argument."""
