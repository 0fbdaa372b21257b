"""time limits that act: a deadline per stage, milestones, extensions, supervision, working-day limits

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00
"""

from alembic import op
import sqlalchemy as sa


# The supervision sweep's passed deadlines: a partial index per stage (as in storage.models).
DEADLINE_INDEXES = {
    'accept_deadline': "state = 'reported'",
    'handling_deadline': "state IN ('transferred', 'in_progress')",
    'verification_deadline': "state = 'handled'",
}

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('matters', schema=None) as batch_op:
        batch_op.alter_column('time_limit_hours', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('time_limit_working_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('accept_within_hours', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('accept_within_working_hours', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('urgent', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accept_deadline', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('rating_deadline', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('extension_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('pending_extension', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('supervising_node_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_cases_supervising_node_id_nodes'), 'nodes', ['supervising_node_id'], ['id'])
        batch_op.create_index('ix_cases_supervising_state', ['supervising_node_id', 'state'], unique=False)
        for field, where in DEADLINE_INDEXES.items():
            batch_op.create_index(f'ix_cases_{field}_open', [field], unique=False,
                                  postgresql_where=sa.text(where), sqlite_where=sa.text(where))

    op.create_table(
        'case_milestones',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('stage', sa.String(length=16), nullable=False),
        sa.Column('trigger', sa.String(length=32), nullable=False),
        sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_milestones_case_id_cases')),
        sa.ForeignKeyConstraint(['event_id'], ['case_events.id'], name=op.f('fk_case_milestones_event_id_case_events')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_case_milestones')),
        sa.UniqueConstraint('case_id', 'stage', 'trigger', 'deadline', name='uq_case_milestones_once'),
    )
    with op.batch_alter_table('case_milestones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_milestones_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_case_milestones_due', ['due_at'], unique=False,
                              postgresql_where=sa.text('fired_at IS NULL'), sqlite_where=sa.text('fired_at IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('case_milestones', schema=None) as batch_op:
        batch_op.drop_index('ix_case_milestones_due')
        batch_op.drop_index(batch_op.f('ix_case_milestones_case_id'))
    op.drop_table('case_milestones')

    with op.batch_alter_table('cases', schema=None) as batch_op:
        for field in DEADLINE_INDEXES:
            batch_op.drop_index(f'ix_cases_{field}_open')
        batch_op.drop_index('ix_cases_supervising_state')
        batch_op.drop_constraint(batch_op.f('fk_cases_supervising_node_id_nodes'), type_='foreignkey')
        batch_op.drop_column('supervising_node_id')
        batch_op.drop_column('pending_extension')
        batch_op.drop_column('extension_count')
        batch_op.drop_column('rating_deadline')
        batch_op.drop_column('accept_deadline')

    with op.batch_alter_table('matters', schema=None) as batch_op:
        batch_op.drop_column('urgent')
        batch_op.drop_column('accept_within_working_hours')
        batch_op.drop_column('accept_within_hours')
        batch_op.drop_column('time_limit_working_days')
        batch_op.execute("UPDATE matters SET time_limit_hours = 72 WHERE time_limit_hours IS NULL")
        batch_op.alter_column('time_limit_hours', existing_type=sa.Integer(), nullable=False)
