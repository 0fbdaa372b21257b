"""a case is a conversation: access codes, followers, merged cases, voice notes, media signing key

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_code", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_cases_merged_into_id_cases"), "cases", ["merged_into_id"], ["id"])
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="photo"))
        batch_op.add_column(sa.Column("duration_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("public_path", sa.String(length=400), nullable=True))
    op.create_table(
        "case_followers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_followers_case_id_cases")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_case_followers_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_followers")),
        sa.UniqueConstraint("case_id", "person_id", name="uq_case_followers_case_person"),
    )
    op.create_index(op.f("ix_case_followers_case_id"), "case_followers", ["case_id"])
    op.create_index(op.f("ix_case_followers_person_id"), "case_followers", ["person_id"])
    op.create_table(
        "access_code_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_access_code_attempts_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_code_attempts")),
    )
    op.create_index("ix_access_code_attempts_person_at", "access_code_attempts", ["person_id", "at"])
    op.create_index("ix_access_code_attempts_number_at", "access_code_attempts", ["number", "at"])
    op.create_table(
        "app_secrets",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_app_secrets")),
    )
    # Cases filed before access codes existed get one now (one statement, however many cases).
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE cases SET access_code = lpad(floor(random() * 10000)::int::text, 4, '0') WHERE access_code IS NULL")
    else:
        op.execute("UPDATE cases SET access_code = substr('000' || abs(random() % 10000), -4, 4) WHERE access_code IS NULL")


def downgrade() -> None:
    op.drop_table("app_secrets")
    op.drop_index("ix_access_code_attempts_number_at", table_name="access_code_attempts")
    op.drop_index("ix_access_code_attempts_person_at", table_name="access_code_attempts")
    op.drop_table("access_code_attempts")
    op.drop_index(op.f("ix_case_followers_person_id"), table_name="case_followers")
    op.drop_index(op.f("ix_case_followers_case_id"), table_name="case_followers")
    op.drop_table("case_followers")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_column("public_path")
        batch_op.drop_column("duration_seconds")
        batch_op.drop_column("kind")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_cases_merged_into_id_cases"), type_="foreignkey")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("access_code")
