"""participant language: the language a participant takes the study in, fixed at consent

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a nullable add_column needs no table rebuild on SQLite; participants enrolled before it have NULL, which
    # reads as the protocol's first language (the only one a protocol had then)
    op.add_column("participants", sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("participants") as batch_op:
        batch_op.drop_column("language")
