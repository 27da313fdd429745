"""participant label: resume a returning participant by a declared URL parameter

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # add_column and a unique index need no table rebuild on SQLite, so existing data is untouched
    op.add_column("participants", sa.Column("label_hash", sa.String(length=64), nullable=True))
    op.create_index("uq_participants_label", "participants", ["study_id", "label_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_participants_label", table_name="participants")
    with op.batch_alter_table("participants") as batch_op:
        batch_op.drop_column("label_hash")
