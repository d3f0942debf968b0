"""Group mapping (SPEC §7) and claim shapes (SPEC §4), as pure functions and through sign-ins."""

from __future__ import annotations

import json

import pytest
from helpers import SignIn, add_user, configure, link_identity, me

from example_app.models import db
from flask_booklore_oidc import signals
from flask_booklore_oidc.adapter import Access
from flask_booklore_oidc.claims import ClaimMapping, groups_from, resolve_claim, validate_mapping
from flask_booklore_oidc.mapping import MappingRow, compute_access, merge
from flask_booklore_oidc.models import GroupMapping

READERS = MappingRow("readers", permissions=frozenset({"read"}), libraries=frozenset({"1"}))
UPLOADERS = MappingRow("uploaders", permissions=frozenset({"upload", "read"}), libraries=frozenset({"2"}))
ADMINS = MappingRow("library-admins", grant_admin=True, permissions=frozenset({"manage_library"}))
ROWS = [READERS, UPLOADERS, ADMINS]
DEFAULTS = Access(False, frozenset({"download"}), frozenset({"9"}))
CURRENT = Access(False, frozenset({"kobo_sync"}), frozenset({"7"}))


# -- the merge ------------------------------------------------------------------------------


def test_matching_rows_are_merged_as_a_union():
    merged = merge([READERS, UPLOADERS])
    assert merged == Access(False, frozenset({"read", "upload"}), frozenset({"1", "2"}))


def test_any_matching_row_that_grants_admin_makes_an_admin():
    assert merge([READERS, ADMINS]).is_admin is True


def test_replace_mode_gives_defaults_plus_merged_and_drops_the_rest():
    access = compute_access("replace", CURRENT, DEFAULTS, ROWS, ["readers", "uploaders"])
    assert access == Access(False, frozenset({"download", "read", "upload"}), frozenset({"9", "1", "2"}))


def test_additive_mode_only_adds():
    access = compute_access("additive", CURRENT, DEFAULTS, ROWS, ["readers"])
    assert access == Access(False, frozenset({"kobo_sync", "read"}), frozenset({"7", "1"}))


def test_additive_mode_never_removes_admin():
    current = Access(True, frozenset(), frozenset())
    assert compute_access("additive", current, DEFAULTS, ROWS, []).is_admin is True


def test_replace_mode_with_no_groups_leaves_only_the_defaults():
    access = compute_access("replace", CURRENT, DEFAULTS, ROWS, [])
    assert access == DEFAULTS


@pytest.mark.parametrize("mode", ["replace", "additive"])
def test_a_missing_groups_claim_changes_nothing(mode):
    assert compute_access(mode, CURRENT, DEFAULTS, ROWS, None) is None


def test_disabled_sync_changes_nothing():
    assert compute_access("disabled", CURRENT, DEFAULTS, ROWS, ["library-admins"]) is None


# -- claim shapes -----------------------------------------------------------------------------

CLAIMS = {
    "groups": ["a", "b"],
    "group": "solo",
    "realm_access": {"roles": ["r1", "r2"]},
    "resource_access": {"my-client": {"roles": ["c1"]}},
    "urn:zitadel:iam:org:project:roles": {"editor": {"123": "org"}, "viewer": {"123": "org"}},
    "https://example.com/groups": ["url-group"],
    "preferred_username": "alice",
    "email": "alice@example.test",
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("groups", ["a", "b"]),
        ("group", ["solo"]),
        ("realm_access.roles", ["r1", "r2"]),
        ("resource_access.my-client.roles", ["c1"]),
        ("urn:zitadel:iam:org:project:roles", ["editor", "viewer"]),
        ("https://example.com/groups", ["url-group"]),
        ("absent", None),
        ("absent, groups", ["a", "b"]),
    ],
    ids=["list", "string", "dot-path", "nested-client-roles", "urn-object", "url-name", "absent", "fallback"],
)
def test_groups_claim_shapes(spec, expected):
    assert groups_from(resolve_claim([CLAIMS], spec)) == expected


def test_an_empty_groups_claim_is_no_groups_not_unknown():
    assert groups_from(resolve_claim([{"groups": []}], "groups")) == []


def test_claims_are_read_from_the_id_token_first_then_userinfo():
    identity = ClaimMapping().identity("https://op", {"sub": "s", "preferred_username": "from-id"},
                                       {"sub": "s", "preferred_username": "from-userinfo", "email": "u@x.test"})
    assert identity.username == "from-id" and identity.email == "u@x.test"


def test_username_fallbacks_are_tried_in_order():
    identity = ClaimMapping(username="nickname, email").identity("https://op", {"sub": "s", "email": "e@x.test"})
    assert identity.username == "e@x.test"


@pytest.mark.parametrize("spec", ["", "a,,b", "a b", ".roles", "realm_access..roles"])
def test_claim_mapping_syntax_errors_are_named(spec):
    assert validate_mapping(spec)


@pytest.mark.parametrize("spec", ["groups", "realm_access.roles", "urn:zitadel:iam:org:project:roles", "a, b"])
def test_valid_claim_mappings_pass(spec):
    assert validate_mapping(spec) is None


# -- through sign-ins ------------------------------------------------------------------------


def add_rows(app, *rows):
    with app.app_context():
        for row in rows:
            db.session.add(GroupMapping(group_value=row.group, description=row.description, grant_admin=row.grant_admin,
                                        permissions=json.dumps(sorted(row.permissions)),
                                        libraries=json.dumps(sorted(row.libraries))))
        db.session.commit()


@pytest.fixture
def mapped(app):
    add_rows(app, *ROWS)
    configure(app, group_sync="replace", default_permissions=["download"], default_libraries=["9"])
    return app


def signin_with_groups(app, op, groups):
    op.id_token_claims_update = {"groups": groups}
    op.userinfo_update = {"groups": groups}
    client = app.test_client()
    SignIn(client, op)()
    return me(client)


def test_a_readers_access_follows_their_provider_groups(mapped, op):
    received = []
    with signals.access_synced.connected_to(lambda sender, **kw: received.append(kw), mapped):
        data = signin_with_groups(mapped, op, ["readers", "uploaders"])
    assert data["permissions"] == ["download", "read", "upload"] and data["libraries"] == ["1", "2", "9"]
    assert received[0]["groups"] == ["readers", "uploaders"]
    assert received[0]["access"].permissions == frozenset({"download", "read", "upload"})

    data = signin_with_groups(mapped, op, ["readers"])
    assert data["permissions"] == ["download", "read"] and data["libraries"] == ["1", "9"]


def test_removal_from_all_groups_leaves_the_defaults(mapped, op):
    add_user(mapped, "admin", is_admin=True)
    signin_with_groups(mapped, op, ["library-admins", "readers"])
    data = signin_with_groups(mapped, op, [])
    assert data["is_admin"] is False and data["permissions"] == ["download"]


def test_a_missing_groups_claim_keeps_the_current_access(mapped, op):
    signin_with_groups(mapped, op, ["uploaders"])
    data = signin_with_groups(mapped, op, None)
    assert data["permissions"] == ["download", "read", "upload"]


def test_group_admin_is_granted_and_revoked_in_replace_mode(mapped, op):
    add_user(mapped, "admin", is_admin=True)
    assert signin_with_groups(mapped, op, ["library-admins"])["is_admin"] is True
    assert signin_with_groups(mapped, op, ["readers"])["is_admin"] is False


def test_the_last_admin_is_never_demoted_by_a_sync(mapped, op, caplog):
    link_identity(mapped, add_user(mapped, "alice", is_admin=True), op.issuer, "sub-alice")
    data = signin_with_groups(mapped, op, ["readers"])
    assert data["is_admin"] is True
    assert data["permissions"] == ["download", "read"]
    assert "last admin" in caplog.text


def test_additive_mode_keeps_what_the_admin_granted_by_hand(mapped, op):
    add_user(mapped, "alice", permissions=["kobo_sync"], password=None)
    configure(mapped, group_sync="additive")
    data = signin_with_groups(mapped, op, ["readers"])
    assert data["permissions"] == ["kobo_sync", "read"]


# -- hooks -----------------------------------------------------------------------------------


def test_group_mapper_hook_replaces_the_builtin_mapping(mapped, op):
    oidc = mapped.extensions["booklore_oidc"]
    seen = []

    def mapper(identity, access):
        seen.append((identity.username, identity.groups, access))
        return Access(False, frozenset({"opds"}), frozenset())

    oidc.reset_hooks()
    oidc.group_mapper(mapper)
    try:
        data = signin_with_groups(mapped, op, ["readers"])
    finally:
        oidc.reset_hooks()
    assert data["permissions"] == ["opds"]
    username, groups, computed = seen[0]
    assert (username, groups) == ("alice", ["readers"])
    assert computed.permissions == frozenset({"download", "read"})


def test_user_provisioner_hook_builds_the_new_user(app, op):
    from example_app.models import User

    oidc = app.extensions["booklore_oidc"]

    @oidc.user_provisioner
    def make(identity, new_user):
        user = User(username=new_user.username.upper(), email=new_user.email, display_name=f"{identity.subject}!",
                    permissions=sorted(new_user.access.permissions), libraries=[])
        db.session.add(user)
        return user

    try:
        client = app.test_client()
        SignIn(client, op)()
    finally:
        oidc.reset_hooks()
    assert me(client)["username"] == "ALICE" and me(client)["display_name"] == "sub-alice!"
