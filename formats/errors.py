"""The base of the errors a shared format raises for things its user can fix.

Every side catches it at its boundary (a command prints the message and exits non-zero), so a message names the
file, field or id at fault.
"""

from __future__ import annotations


class FormatError(ValueError):
    """A shared file, id or record is wrong in a way the user can fix; the message says what and where."""
