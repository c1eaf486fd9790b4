"""purity targets, alerts and time labels

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "line_targets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.String(length=64), nullable=False),
        sa.Column("class", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=3), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("window_min", sa.Integer(), nullable=False),
        sa.Column("min_items", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "line", "class", "kind", name="uq_targets_site_line_class_kind"),
    )
    op.create_index("ix_line_targets_site_id", "line_targets", ["site_id"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("line", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
        sa.Column("open_key", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "open_key", name="uq_alerts_site_open_key"),
    )
    op.create_index("ix_alerts_site_id", "alerts", ["site_id"])
    op.create_table(
        "time_labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.String(length=64), nullable=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.String(length=200), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_time_labels_site_id", "time_labels", ["site_id"])


def downgrade() -> None:
    op.drop_index("ix_time_labels_site_id", table_name="time_labels")
    op.drop_table("time_labels")
    op.drop_index("ix_alerts_site_id", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_line_targets_site_id", table_name="line_targets")
    op.drop_table("line_targets")
