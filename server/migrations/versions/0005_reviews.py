"""review items, their crops and labels; token names

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("name", sa.String(length=100), nullable=True))
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("line", sa.String(length=64), nullable=False),
        sa.Column("track_id", sa.BigInteger(), nullable=False),
        sa.Column("counted", sa.String(length=64), nullable=False),
        sa.Column("probabilities", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("detector", sa.String(length=200), nullable=False),
        sa.Column("classifier", sa.String(length=200), nullable=False),
        sa.Column("needed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("final", sa.String(length=64), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "item_id", name="uq_review_items_device_item"),
    )
    op.create_index("ix_review_items_site_id", "review_items", ["site_id"])
    op.create_index("ix_review_items_classifier", "review_items", ["classifier"])
    op.create_index("ix_review_items_status", "review_items", ["status"])
    op.create_table(
        "review_crops",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["item"], ["review_items.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_review_crops_item", "review_crops", ["item"])
    op.create_table(
        "review_labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=120), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item"], ["review_items.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item", "token_id", name="uq_review_labels_item_token"),
    )
    op.create_index("ix_review_labels_item", "review_labels", ["item"])
    op.create_index("ix_review_labels_token_id", "review_labels", ["token_id"])


def downgrade() -> None:
    op.drop_table("review_labels")
    op.drop_table("review_crops")
    op.drop_table("review_items")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("name")
