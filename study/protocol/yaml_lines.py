"""Protocol problems as a reader finds them in the file: pydantic's error locations → field paths with lines.

``questionnaires.post[2].scale.points (line 41): …`` — each validation error located by its field path in
the protocol's own terms, and by the line of that field (or of the nearest enclosing one) in the YAML text.
"""

from __future__ import annotations

import yaml
from pydantic import ValidationError

from study.items import KIND_NAMES


def line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every field path of a composed YAML document to its 1-based line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            line_index(value, (*path, key.value), out)
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            line_index(value, (*path, index), out)
    return out


def format_location(loc: tuple) -> str:
    """('questionnaires', 'post', 2, 'scale', 'points') → 'questionnaires.post[2].scale.points'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def field_path(loc: tuple) -> tuple:
    """pydantic's error location without the tags it inserts: validator and union tags
    ('function-after[...]', 'tuple[...]'), and the item kind after an item's index (the tagged union of
    :data:`study.items.AnyItem` locates ``trial[2].scale`` as ``trial[2].likert.scale``)."""
    path: list = []
    for part in loc:
        if isinstance(part, str) and ("[" in part or "-" in part):
            continue
        if isinstance(part, str) and path and isinstance(path[-1], int) and part in KIND_NAMES:
            continue
        path.append(part)
    return tuple(path)


def problems(error: ValidationError, lines: dict[tuple, int]) -> list[str]:
    """One line per validation error: its field path, its line where known, and pydantic's message."""
    found = []
    for item in error.errors():
        loc = field_path(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
        where = f" (line {line})" if line else ""
        found.append(f"{format_location(loc) or '(top level)'}{where}: {message}")
    return found
