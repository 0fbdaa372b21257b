"""People remember their grid and whether they chose a language; dialogs keep a draft

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("home_grid_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("language_chosen", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_foreign_key(batch_op.f("fk_people_home_grid_id_nodes"), "nodes", ["home_grid_id"], ["id"])
    with op.batch_alter_table("dialog_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("draft", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("draft_saved_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dialog_states", schema=None) as batch_op:
        batch_op.drop_column("draft_saved_at")
        batch_op.drop_column("draft")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_people_home_grid_id_nodes"), type_="foreignkey")
        batch_op.drop_column("language_chosen")
        batch_op.drop_column("home_grid_id")
