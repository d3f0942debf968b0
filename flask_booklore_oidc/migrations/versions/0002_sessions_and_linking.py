"""Every session can be ended, and linking with proof: login records for local sign-ins too
(issuer and subject may be NULL), with the client they were made with and an optional end;
a maximum session age setting; pending links waiting for a password; the throttle of failed
password checks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("booklore_oidc_login") as batch:
        batch.alter_column("issuer", existing_type=sa.String(500), nullable=True)
        batch.alter_column("subject", existing_type=sa.String(255), nullable=True)
        batch.add_column(sa.Column("client_id", sa.String(255)))
        batch.add_column(sa.Column("expires_at", sa.DateTime()))
    # Sessions signed in before this revision were made with the client saved now.
    op.execute(
        "UPDATE booklore_oidc_login SET client_id = "
        "(SELECT client_id FROM booklore_oidc_settings WHERE id = 1) WHERE issuer IS NOT NULL"
    )
    with op.batch_alter_table("booklore_oidc_settings") as batch:
        batch.add_column(sa.Column("max_session_age", sa.Integer()))

    op.create_table(
        "booklore_oidc_pending_link",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("linked_by", sa.String(20), nullable=False),
        sa.Column("username", sa.String(255)),
        sa.Column("email", sa.String(255)),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("display_name", sa.String(255)),
        sa.Column("groups", sa.Text()),
        sa.Column("sid", sa.String(255)),
        sa.Column("id_token", sa.Text()),
        sa.Column("next_url", sa.String(2000), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_booklore_oidc_pending_link_browser_hash", "booklore_oidc_pending_link", ["browser_hash"])
    op.create_index("ix_booklore_oidc_pending_link_expires_at", "booklore_oidc_pending_link", ["expires_at"])

    op.create_table(
        "booklore_oidc_throttle",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime()),
    )
    op.create_index("ix_booklore_oidc_throttle_last_failure", "booklore_oidc_throttle", ["last_failure"])


def downgrade() -> None:
    op.drop_index("ix_booklore_oidc_throttle_last_failure", "booklore_oidc_throttle")
    op.drop_table("booklore_oidc_throttle")
    op.drop_index("ix_booklore_oidc_pending_link_expires_at", "booklore_oidc_pending_link")
    op.drop_index("ix_booklore_oidc_pending_link_browser_hash", "booklore_oidc_pending_link")
    op.drop_table("booklore_oidc_pending_link")
    with op.batch_alter_table("booklore_oidc_settings") as batch:
        batch.drop_column("max_session_age")
    op.execute("DELETE FROM booklore_oidc_login WHERE issuer IS NULL")
    with op.batch_alter_table("booklore_oidc_login") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("client_id")
        batch.alter_column("subject", existing_type=sa.String(255), nullable=False)
        batch.alter_column("issuer", existing_type=sa.String(500), nullable=False)
