"""claim lifecycle: the claim's current assessment version, removable photos

Revision ID: 0003_lifecycle
Revises: 0002
Create Date: 2026-11-27 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_lifecycle"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("current_version", sa.Integer(), nullable=True))
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    # Until now a claim stood on its latest version.
    op.execute(
        "UPDATE claims SET current_version = "
        "(SELECT MAX(version) FROM assessments WHERE assessments.claim_id = claims.id)"
    )


def downgrade() -> None:
    # A removed photo cannot be told from a present one in the old schema: drop its row
    # only where nothing else refers to it, else it comes back as present.
    op.execute(
        "DELETE FROM photos WHERE removed_at IS NOT NULL "
        "AND id NOT IN (SELECT photo_id FROM photo_hashes)"
    )
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_column("current_version")
