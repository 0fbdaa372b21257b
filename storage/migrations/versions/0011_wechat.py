"""WeChat Official Account: shared access token, followers' message window and menus

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wechat_accounts",
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("language_tag_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_wechat_accounts")),
    )
    op.create_table(
        "wechat_followers",
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("menu_serial", sa.Integer(), nullable=False),
        sa.Column("menus", sa.JSON(), nullable=False),
        sa.Column("menu_language", sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint("app_id", "openid", name=op.f("pk_wechat_followers")),
    )


def downgrade() -> None:
    op.drop_table("wechat_followers")
    op.drop_table("wechat_accounts")
