"""the claimant's capture page: one-time links, sessions, and each photo's quick check

Revision ID: 0005_capture
Revises: 0004_webhook_secrets
Create Date: 2026-12-02 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_capture"
down_revision = "0004_webhook_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capture_links",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("claim_id", sa.String(32), sa.ForeignKey("claims.id"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_capture_links_claim_id", "capture_links", ["claim_id"])
    op.create_table(
        "capture_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("claim_id", sa.String(32), sa.ForeignKey("claims.id"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_capture_sessions_claim_id", "capture_sessions", ["claim_id"])
    op.create_table(
        "capture_checks",
        sa.Column("photo_id", sa.String(32), sa.ForeignKey("photos.id"), primary_key=True),
        sa.Column("claim_id", sa.String(32), sa.ForeignKey("claims.id"), nullable=False),
        sa.Column("shot", sa.String(32), nullable=False),
        sa.Column("upload_key", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("issues", sa.JSON(), nullable=False),
        sa.Column("perceptual_hash", sa.String(16), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_capture_checks_claim_id", "capture_checks", ["claim_id"])
    op.create_index("ix_capture_checks_upload_key", "capture_checks", ["upload_key"])


def downgrade() -> None:
    op.drop_table("capture_checks")
    op.drop_table("capture_sessions")
    op.drop_table("capture_links")
