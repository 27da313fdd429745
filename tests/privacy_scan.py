"""Looking for a user's photo anywhere in a database: every table, every row, every column."""

from __future__ import annotations

import base64

from sqlalchemy import MetaData, select

from db.session import Database
from formats.jobs import decode_png, encode_png


def photo_traces(upload: bytes) -> list[bytes]:
    """What of an uploaded photo could be stored: a stretch from the middle of the upload's base64 and of the
    base64 PNG the app sends to workers (PNG headers are alike in every image: not from the start), and of the
    raw bytes."""
    uploaded = base64.b64encode(upload).decode()
    sent = encode_png(decode_png(uploaded))
    middle = [text[len(text) // 2 : len(text) // 2 + 48] for text in (uploaded, sent)]
    return [chunk.encode() for chunk in middle] + [upload[len(upload) // 2 : len(upload) // 2 + 32]]


def stored_traces(db: Database, traces: list[bytes]) -> list[str]:
    """Every ``table.column`` of ``db`` holding any of ``traces``."""
    tables = MetaData()
    tables.reflect(db.engine)
    found = []
    with db.read() as session:
        for table in tables.sorted_tables:
            for row in session.execute(select(table)):
                for name, value in row._mapping.items():
                    data = value if isinstance(value, bytes) else str(value).encode()
                    if any(trace in data for trace in traces):
                        found.append(f"{table.name}.{name}")
    return found
