"""jobs expire and pages hold them (a photo is erased once its user has left); workers' heartbeats

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable add_column needs no table rebuild on SQLite; jobs queued before the upgrade never expire by
    # time, but the sweeper still erases their inputs once they end (db/jobs.py)
    op.add_column("jobs", sa.Column("expires_at", db.models.UTCDateTime(), nullable=True))
    op.add_column("jobs", sa.Column("held_until", db.models.UTCDateTime(), nullable=True))
    op.create_index("ix_jobs_held_until", "jobs", ["held_until"])
    op.create_table(
        "worker_beats",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("started_at", db.models.UTCDateTime(), nullable=False),
        sa.Column("last_seen", db.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("worker_beats")
    op.drop_index("ix_jobs_held_until", table_name="jobs")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("held_until")
        batch_op.drop_column("expires_at")
