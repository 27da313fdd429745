"""data rights: when a participant withdrew, and when their recorded identifiers were purged

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable add_column needs no table rebuild on SQLite: existing participants are untouched
    op.add_column("participants", sa.Column("withdrawn_at", sa.DateTime(), nullable=True))
    op.add_column("participants", sa.Column("identifiers_purged_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("participants") as batch_op:
        batch_op.drop_column("identifiers_purged_at")
        batch_op.drop_column("withdrawn_at")
