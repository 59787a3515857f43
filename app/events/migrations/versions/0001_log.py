"""The append-only log of ratings, items and forgotten users.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=True, unique=True),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("item_id", sa.String(128), nullable=True),
        sa.Column("rating", sa.Float, nullable=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("received", sa.Float, nullable=False),
        sa.Column("title", sa.Text, nullable=True),
        sa.Column("genres", sa.Text, nullable=True),
        sa.Column("year", sa.Integer, nullable=True),
        sqlite_autoincrement=True,  # ids never reused after a delete (workers' cursors)
    )
    op.create_index("log_user", "log", ["user_id"])


def downgrade() -> None:
    op.drop_index("log_user", "log")
    op.drop_table("log")
