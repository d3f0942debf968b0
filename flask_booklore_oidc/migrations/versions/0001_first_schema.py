"""The first released schema: settings, identities, sign-in transactions, login records, the
group mapping and accepted logout tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "booklore_oidc_settings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("enabled", sa.Boolean()),
        sa.Column("only_mode", sa.Boolean()),
        sa.Column("provider_name", sa.String(100)),
        sa.Column("client_id", sa.String(255)),
        sa.Column("client_secret", sa.Text()),
        sa.Column("issuer_uri", sa.String(500)),
        sa.Column("scopes", sa.String(500)),
        sa.Column("token_auth_method", sa.String(40)),
        sa.Column("claim_username", sa.String(200)),
        sa.Column("claim_email", sa.String(200)),
        sa.Column("claim_display_name", sa.String(200)),
        sa.Column("claim_groups", sa.String(200)),
        sa.Column("always_userinfo", sa.Boolean()),
        sa.Column("auto_provision", sa.Boolean()),
        sa.Column("sync_profile", sa.Boolean()),
        sa.Column("link_by_username", sa.Boolean()),
        sa.Column("username_case_sensitive", sa.Boolean()),
        sa.Column("link_by_email", sa.Boolean()),
        sa.Column("allowed_groups", sa.Text()),
        sa.Column("default_permissions", sa.Text()),
        sa.Column("default_libraries", sa.Text()),
        sa.Column("group_sync", sa.String(20)),
        sa.Column("provider_logout", sa.Boolean()),
        sa.Column("public_url", sa.String(500)),
        sa.Column("http_timeout", sa.Float()),
        sa.Column("ca_bundle", sa.String(500)),
        sa.Column("clock_skew", sa.Integer()),
    )
    op.create_table(
        "booklore_oidc_identity",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.Column("linked_by", sa.String(20), nullable=False),
        sa.Column("last_login_at", sa.DateTime()),
        sa.UniqueConstraint("issuer", "subject", name="uq_booklore_oidc_identity_iss_sub"),
    )
    op.create_index("ix_booklore_oidc_identity_user_id", "booklore_oidc_identity", ["user_id"])
    op.create_table(
        "booklore_oidc_transaction",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("redirect_uri", sa.String(1000), nullable=False),
        sa.Column("next_url", sa.String(2000), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("settings_override", sa.Text()),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_booklore_oidc_transaction_expires_at", "booklore_oidc_transaction", ["expires_at"])
    op.create_table(
        "booklore_oidc_login",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("sid", sa.String(255)),
        sa.Column("id_token", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime()),
    )
    op.create_index("ix_booklore_oidc_login_user_id", "booklore_oidc_login", ["user_id"])
    op.create_index("ix_booklore_oidc_login_sid", "booklore_oidc_login", ["sid"])
    op.create_index("ix_booklore_oidc_login_created_at", "booklore_oidc_login", ["created_at"])
    op.create_table(
        "booklore_oidc_group_mapping",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("group_value", sa.String(255), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("grant_admin", sa.Boolean(), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("libraries", sa.Text(), nullable=False),
    )
    op.create_index("ix_booklore_oidc_group_mapping_group_value", "booklore_oidc_group_mapping", ["group_value"])
    op.create_table(
        "booklore_oidc_logout_jti",
        sa.Column("jti_hash", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_booklore_oidc_logout_jti_expires_at", "booklore_oidc_logout_jti", ["expires_at"])


def downgrade() -> None:
    for table in (
        "booklore_oidc_logout_jti",
        "booklore_oidc_group_mapping",
        "booklore_oidc_login",
        "booklore_oidc_transaction",
        "booklore_oidc_identity",
        "booklore_oidc_settings",
    ):
        op.drop_table(table)
