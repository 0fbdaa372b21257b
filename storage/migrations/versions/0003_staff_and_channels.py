"""outbox leases, web inbox, invitations, API tokens, case views

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 08:08:28.414284
"""

from alembic import op
import sqlalchemy as sa



revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_api_tokens_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_person_id'), ['person_id'], unique=False)

    op.create_table('invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('role', sa.Enum('resident', 'grid_worker', 'grid_worker_part_time', 'grid_chief', 'grid_instructor', 'centre_staff', 'department_handler', 'administrator', name='role', native_enum=False, length=32), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['people.id'], name=op.f('fk_invitations_created_by_people')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_invitations_department_id_departments')),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_invitations_node_id_nodes')),
    sa.ForeignKeyConstraint(['used_by'], ['people.id'], name=op.f('fk_invitations_used_by_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_invitations_code_hash'))
    )
    op.create_table('web_inbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_web_inbox_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_inbox'))
    )
    with op.batch_alter_table('web_inbox', schema=None) as batch_op:
        batch_op.create_index('ix_web_inbox_person_id', ['person_id', 'id'], unique=False)

    op.create_table('case_views',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('viewed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_views_case_id_cases')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_case_views_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_views'))
    )
    with op.batch_alter_table('case_views', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_views_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_views_person_id'), ['person_id'], unique=False)

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')

    with op.batch_alter_table('case_views', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_views_person_id'))
        batch_op.drop_index(batch_op.f('ix_case_views_case_id'))

    op.drop_table('case_views')
    with op.batch_alter_table('web_inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_web_inbox_person_id')

    op.drop_table('web_inbox')
    op.drop_table('invitations')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_person_id'))

    op.drop_table('api_tokens')
