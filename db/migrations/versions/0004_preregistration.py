"""preregistration: the hash of the preregistered plan, stored with each registered protocol version

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a nullable add_column needs no table rebuild on SQLite; versions registered before have no plan (NULL)
    op.add_column("studies", sa.Column("prereg_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("studies") as batch_op:
        batch_op.drop_column("prereg_hash")
