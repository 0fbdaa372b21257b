"""indexes for indicators, bulletin deliveries, console sign-in links

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_grid_updated", ["grid_id", "updated_at"], unique=False)
        batch_op.create_index("ix_cases_grid_deadline", ["grid_id", "handling_deadline"], unique=False)
    op.create_table(
        "bulletin_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_bulletin_deliveries_node_id_nodes")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_bulletin_deliveries_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulletin_deliveries")),
        sa.UniqueConstraint("month", "person_id", name="uq_bulletin_deliveries_month_person"),
    )
    op.create_table(
        "console_logins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("link_hash", sa.String(length=64), nullable=False),
        sa.Column("link_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_hash", sa.String(length=64), nullable=True),
        sa.Column("session_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_console_logins_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_logins")),
        sa.UniqueConstraint("link_hash", name=op.f("uq_console_logins_link_hash")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_console_logins_session_hash")),
    )
    op.create_index(op.f("ix_console_logins_person_id"), "console_logins", ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_console_logins_person_id"), table_name="console_logins")
    op.drop_table("console_logins")
    op.drop_table("bulletin_deliveries")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_grid_deadline")
        batch_op.drop_index("ix_cases_grid_updated")
