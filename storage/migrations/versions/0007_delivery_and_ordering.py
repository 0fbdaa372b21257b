"""processed updates keyed by bot and chat, stored before handling; shared pacing slots

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:50:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bot', sa.String(length=32), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('chat', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('received_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('processed_at', existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.drop_constraint('pk_processed_updates', type_='primary')
        batch_op.create_primary_key('pk_processed_updates', ['platform', 'bot', 'chat', 'update_id'])
    op.execute("UPDATE processed_updates SET received_at = processed_at, answered_at = processed_at")
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.alter_column('received_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index('ix_processed_updates_received_at', ['received_at'], unique=False)
    op.create_table(
        'pacing_slots',
        sa.Column('key', sa.String(length=128), nullable=False),
        sa.Column('next_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_pacing_slots')),
    )


def downgrade() -> None:
    op.drop_table('pacing_slots')
    op.execute("DELETE FROM processed_updates WHERE processed_at IS NULL")
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.drop_index('ix_processed_updates_received_at')
        batch_op.drop_constraint('pk_processed_updates', type_='primary')
    # Two chats may have used one id: keep one row per (platform, update_id).
    op.execute(
        "DELETE FROM processed_updates WHERE EXISTS (SELECT 1 FROM processed_updates AS other "
        "WHERE other.platform = processed_updates.platform AND other.update_id = processed_updates.update_id "
        "AND (other.bot, other.chat) < (processed_updates.bot, processed_updates.chat))"
    )
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.create_primary_key('pk_processed_updates', ['platform', 'update_id'])
        batch_op.alter_column('processed_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_column('answered_at')
        batch_op.drop_column('payload')
        batch_op.drop_column('received_at')
        batch_op.drop_column('chat')
        batch_op.drop_column('bot')
