"""The store's identity: a UUID written once, when the store is created (or, for a store made
before identities, when it is upgraded) and kept by every later migration; a store restored
from a backup gets one of its own (`recsys store restore`).

Revision ID: 0002
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    meta = op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.bulk_insert(meta, [{"key": "store_id", "value": str(uuid.uuid4())}])


def downgrade() -> None:
    op.drop_table("store_meta")
