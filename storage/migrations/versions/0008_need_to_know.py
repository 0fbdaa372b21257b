"""need-to-know: published wording, anonymisation, token scopes and expiry, periodic runs

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01 09:50:00
"""

from datetime import datetime, timedelta, timezone

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None

ALL_SCOPES = ["read", "act", "report"]


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('anonymised_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_cases_anonymised_closed', ['anonymised_at', 'closed_at'], unique=False)
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('case_views', schema=None) as batch_op:
        batch_op.create_index('ix_case_views_viewed_at', ['viewed_at'], unique=False)
    op.create_table('periodic_runs',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_periodic_runs'))
    )
    # Tokens made before scopes existed keep what they could do, for 90 more days.
    tokens = sa.table('api_tokens', sa.column('scopes', sa.JSON()), sa.column('expires_at', sa.DateTime(timezone=True)))
    expires = datetime.now(timezone.utc) + timedelta(days=90)
    if op.get_bind().dialect.name == "sqlite":
        expires = expires.replace(tzinfo=None)
    op.execute(tokens.update().values(scopes=ALL_SCOPES, expires_at=expires))


def downgrade() -> None:
    op.drop_table('periodic_runs')
    with op.batch_alter_table('case_views', schema=None) as batch_op:
        batch_op.drop_index('ix_case_views_viewed_at')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('scopes')
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_anonymised_closed')
        batch_op.drop_column('anonymised_at')
        batch_op.drop_column('published_at')
        batch_op.drop_column('public_text')
