"""jobs for model workers, and participants' turns with the live model

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column("batch_key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=True),
        sa.Column("lease_until", db.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", db.models.UTCDateTime(), nullable=False),
        sa.Column("started_at", db.models.UTCDateTime(), nullable=True),
        sa.Column("finished_at", db.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_claimable", "jobs", ["kind", "status", "id"])
    op.create_index("ix_jobs_request", "jobs", ["request_key"])
    op.create_table(
        "interaction_turns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("step_key", sa.String(length=32), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("condition", sa.String(length=64), nullable=True),
        sa.Column("model_id", sa.String(length=256), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("images", sa.JSON(), nullable=False),
        sa.Column("asked_at", db.models.UTCDateTime(), nullable=False),
        sa.Column("answered_at", db.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("participant_id", "step_key", "turn"),
    )


def downgrade() -> None:
    op.drop_table("interaction_turns")
    op.drop_index("ix_jobs_request", table_name="jobs")
    op.drop_index("ix_jobs_claimable", table_name="jobs")
    op.drop_table("jobs")
