"""processed updates keep their answer

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 09:34:50.240320
"""

from alembic import op
import sqlalchemy as sa



revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replies', sa.JSON(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.drop_column('replies')

