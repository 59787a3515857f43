"""Impressions and their attributions: every answer recorded with what it showed, and the
ratings that answered one; the log's ratings may name the impression they answer.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("log") as log:
        log.add_column(sa.Column("recommendation_id", sa.String(64), nullable=True))
    op.create_table(
        "impressions",
        sa.Column("id", Id, primary_key=True),
        sa.Column("recommendation_id", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("experiment", sa.String(64), nullable=True),
        sa.Column("variant", sa.String(64), nullable=True),
        sa.Column("items", sa.Text, nullable=False),
        sa.Column("credits", sa.Text, nullable=True),
        sa.Column("ts", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("impressions_user", "impressions", ["user_id", "ts"])
    op.create_index("impressions_ts", "impressions", ["ts"])
    op.create_table(
        "attributions",
        sa.Column("log_id", Id, primary_key=True),
        sa.Column("impression_id", Id, nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("item_id", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("experiment", sa.String(64), nullable=True),
        sa.Column("variant", sa.String(64), nullable=True),
        sa.Column("rating", sa.Float, nullable=False),
        sa.Column("explicit", sa.Boolean, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_index("attributions_impression", "attributions", ["impression_id"])
    op.create_index("attributions_ts", "attributions", ["ts"])


def downgrade() -> None:
    op.drop_table("attributions")
    op.drop_table("impressions")
    with op.batch_alter_table("log") as log:
        log.drop_column("recommendation_id")
