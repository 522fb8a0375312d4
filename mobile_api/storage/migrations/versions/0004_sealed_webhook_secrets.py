"""webhook secrets sealed at rest under a key derived from CDAT_SECRET_KEY

Revision ID: 0004_webhook_secrets
Revises: 0003_security
Create Date: 2026-12-02 00:20:00

The secret key comes from the caller (`cdat db upgrade` and `cdat serve` pass the settings'
one). Without it (a bare `alembic upgrade`) the rows stay as they are, which the service
still reads; the next upgrade given the key seals them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from mobile_api.storage.sealed_secrets import is_sealed, seal, unseal

revision = "0004_webhook_secrets"
down_revision = "0003_security"
branch_labels = None
depends_on = None

claims = sa.table("claims", sa.column("id", sa.String), sa.column("webhook_secret", sa.String))


def _rewrite(sealing: bool) -> None:
    secret_key = context.config.attributes.get("secret_key")
    if not secret_key:
        return
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(claims.c.id, claims.c.webhook_secret).where(claims.c.webhook_secret.is_not(None))
    ).all()
    for claim_id, stored in rows:
        if is_sealed(stored) == sealing:
            continue
        value = (
            seal(secret_key, claim_id, stored) if sealing else unseal(secret_key, claim_id, stored)
        )
        connection.execute(
            sa.update(claims).where(claims.c.id == claim_id).values(webhook_secret=value)
        )


def upgrade() -> None:
    _rewrite(sealing=True)


def downgrade() -> None:
    _rewrite(sealing=False)
