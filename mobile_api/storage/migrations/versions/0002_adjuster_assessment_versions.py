"""adjuster-made assessment versions: job_id nullable, source and author

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 05:55:31
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), server_default="model", nullable=False)
        )
        batch_op.add_column(sa.Column("author", sa.String(length=255), nullable=True))
        batch_op.alter_column("job_id", existing_type=sa.VARCHAR(length=32), nullable=True)


def downgrade() -> None:
    # Adjuster versions have no job; the old schema cannot hold them.
    op.execute("DELETE FROM assessments WHERE job_id IS NULL")
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.alter_column("job_id", existing_type=sa.VARCHAR(length=32), nullable=False)
        batch_op.drop_column("author")
        batch_op.drop_column("source")
