"""Recent sign-in activity (SPEC §9): one row per sign-in attempt, bounded by the writer.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "booklore_oidc_activity",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("result", sa.String(40), nullable=False),
        sa.Column("rule", sa.String(20), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("client_address", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("reference", sa.String(16), nullable=False),
    )
    op.create_index("ix_booklore_oidc_activity_at", "booklore_oidc_activity", ["at"])
    op.create_index("ix_booklore_oidc_activity_reference", "booklore_oidc_activity", ["reference"])


def downgrade() -> None:
    op.drop_index("ix_booklore_oidc_activity_reference", "booklore_oidc_activity")
    op.drop_index("ix_booklore_oidc_activity_at", "booklore_oidc_activity")
    op.drop_table("booklore_oidc_activity")
