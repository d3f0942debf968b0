"""Who gets signed in (SPEC §6): the one place that decides, in order:

1. allowed-groups gate (before anything is written), 2. an identity already linked,
3. link by username, 4. link by verified email (exactly one match), 5. auto-provision,
6. otherwise ``user_not_provisioned``.

Before any of that reads the database, a username the provider sent with surrounding whitespace
or an invisible character is refused (``invalid_username``): names are compared exactly.
Linking (3, 4) needs proof unless the account has no local password and is not an admin: an
account with a password, or an admin's, yields :attr:`Rule.NEEDS_PROOF` (the reader must type
that account's password, :mod:`.linking`), and a passwordless admin account is linked only by
an administrator. Auto-provisioning refuses a name that looks like an existing one (UTS #39
skeleton, :func:`.names.looks_like`).

:meth:`Resolver.decide` only reads and returns a :class:`Decision` (the settings page's test
sign-in shows it as it is); :meth:`Resolver.resolve` carries a decision out through the adapter's
session and commits it. A unique-constraint race with another process (two first sign-ins of
one new person) is resolved by rolling back and deciding again, which then finds the identity
the other process wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .adapter import Access, NewUser, UserAdapter
from .claims import Identity
from .errors import OIDCError
from .i18n import lazy_gettext
from .mapping import MappingRow, compute_access, matching
from .models import Identity as IdentityRow
from .models import utcnow
from .names import looks_like, username_problem
from .rules import keep_last_admin
from .settings import Settings

log = logging.getLogger(__name__)

#: ``@oidc.user_provisioner``: (identity, proposed NewUser) -> host user object (added to session)
Provisioner = Callable[[Identity, NewUser], Any]
#: ``@oidc.group_mapper``: (identity, access computed by the built-in mapping or None) -> Access or None
GroupMapper = Callable[[Identity, "Access | None"], "Access | None"]


class Rule(StrEnum):
    """Which rule of §6 decided: the first four sign someone in; ``needs_proof`` links only
    after the reader typed the account's password; the others refuse."""

    IDENTITY = "identity"
    USERNAME = "username"
    EMAIL = "email"
    PROVISIONED = "provisioned"
    NEEDS_PROOF = "needs_proof"
    REFUSED = "refused"
    CONFLICT = "conflict"
    NOT_PROVISIONED = "not_provisioned"
    INVALID_USERNAME = "invalid_username"


@dataclass(frozen=True)
class Decision:
    """What §6 decides for an identity, before anything is written."""

    #: identity, username, email, provisioned; or refused (allowed groups), conflict,
    #: not_provisioned with ``error`` set
    rule: Rule
    user: Any = None
    error: OIDCError | None = None
    #: the new user's proposal when ``rule == "provisioned"``
    new_user: NewUser | None = None
    #: the identity row that points at a deleted user, to be removed
    stale_row: IdentityRow | None = field(default=None, repr=False)
    #: the linked identity row when ``rule == "identity"``
    row: IdentityRow | None = field(default=None, repr=False)
    #: how the account was found (username or email) when ``rule == "needs_proof"``
    link_by: Rule | None = None


@dataclass(frozen=True)
class Resolution:
    user: Any
    #: the rule that picked the user: identity, username, email or provisioned; or
    #: needs_proof (nothing written, nobody signed in: see :attr:`Decision.link_by`)
    rule: Rule
    #: the access group sync applied, if it ran
    access: Access | None = None
    #: how the account was found when ``rule == "needs_proof"``
    link_by: Rule | None = None


def default_access(settings: Settings) -> Access:
    return Access(
        is_admin=False,
        permissions=frozenset(settings.default_permissions),
        libraries=frozenset(settings.default_libraries),
    )


class Resolver:
    def __init__(
        self,
        adapter: UserAdapter,
        settings: Settings,
        *,
        mapping_rows: Sequence[MappingRow] = (),
        provisioner: Provisioner | None = None,
        group_mapper: GroupMapper | None = None,
    ) -> None:
        self.adapter = adapter
        self.settings = settings
        self.mapping_rows = list(mapping_rows)
        self.provisioner = provisioner
        self.group_mapper = group_mapper

    # -- deciding (reads only) ---------------------------------------------------------------

    def _identity_row(self, identity: Identity) -> IdentityRow | None:
        return self.adapter.session.execute(
            select(IdentityRow).where(IdentityRow.issuer == identity.issuer, IdentityRow.subject == identity.subject)
        ).scalar_one_or_none()

    def _linked_elsewhere(self, user: Any, identity: Identity) -> bool:
        """The user already has an identity at this issuer with another subject. Its identity
        with this very subject is no conflict: a parallel sign-in of the same person wrote it."""
        row = self.adapter.session.execute(
            select(IdentityRow.id).where(
                IdentityRow.issuer == identity.issuer,
                IdentityRow.user_id == self.adapter.get_id(user),
                IdentityRow.subject != identity.subject,
            )
        ).first()
        return row is not None

    def decide(self, identity: Identity) -> Decision:
        adapter, settings = self.adapter, self.settings
        if settings.allowed_groups and not set(identity.groups or ()) & set(settings.allowed_groups):
            return Decision(
                Rule.REFUSED,
                error=OIDCError(
                    "access_denied_group",
                    lazy_gettext(
                        "%(user)s is not a member of an allowed group (%(groups)s).",
                        user=identity.username or identity.subject,
                        groups=", ".join(settings.allowed_groups),
                    ),
                ),
            )

        if identity.username is not None:
            problem = username_problem(identity.username, adapter.max_username_length)
            if problem is not None:
                return Decision(
                    Rule.INVALID_USERNAME,
                    error=OIDCError(
                        "invalid_username",
                        lazy_gettext(
                            "The provider's username %(user)s %(problem)s; usernames are compared exactly, so it is "
                            "refused rather than trimmed.",
                            user=repr(identity.username),
                            problem=problem,
                        ),
                    ),
                )

        stale = None
        row = self._identity_row(identity)
        if row is not None:
            user = adapter.get_by_id(row.user_id)
            if user is not None:
                return Decision(Rule.IDENTITY, user=user, row=row)
            stale = row  # the user was deleted outside the ORM: forget the identity

        if settings.link_by_username and identity.username:
            user = adapter.get_by_username(identity.username, case_sensitive=settings.username_case_sensitive)
            if user is not None:
                if self._linked_elsewhere(user, identity):
                    return Decision(
                        Rule.CONFLICT,
                        user=user,
                        error=OIDCError(
                            "account_conflict",
                            lazy_gettext(
                                "The account %(user)s is already linked to another identity at this provider.",
                                user=repr(adapter.get_username(user)),
                            ),
                        ),
                    )
                return self._link(user, Rule.USERNAME, stale)

        if settings.link_by_email and identity.email and identity.email_verified:
            matches = adapter.find_by_email(identity.email)
            if len(matches) == 1:
                if self._linked_elsewhere(matches[0], identity):
                    return Decision(
                        Rule.CONFLICT,
                        user=matches[0],
                        error=OIDCError(
                            "account_conflict",
                            lazy_gettext(
                                "The account with the email %(email)s is already linked to another identity at this "
                                "provider.",
                                email=identity.email,
                            ),
                        ),
                    )
                return self._link(matches[0], Rule.EMAIL, stale)
            if len(matches) > 1:
                log.warning("Not linking by email: %d accounts share %s.", len(matches), identity.email)

        if settings.auto_provision:
            if not identity.username:
                return Decision(
                    Rule.NOT_PROVISIONED,
                    error=OIDCError(
                        "user_not_provisioned",
                        lazy_gettext(
                            "The provider sent no username (claim %(claim)s), so no account can be created.",
                            claim=repr(settings.claim_username),
                        ),
                    ),
                )
            if adapter.get_by_username(identity.username, case_sensitive=False) is not None:
                return Decision(
                    Rule.CONFLICT,
                    error=OIDCError(
                        "account_conflict",
                        lazy_gettext(
                            "The username %(user)s is taken by an account that may not be linked automatically.",
                            user=repr(identity.username),
                        ),
                    ),
                )
            alike = looks_like(identity.username, adapter.usernames())
            if alike is not None:
                return Decision(
                    Rule.CONFLICT,
                    error=OIDCError(
                        "account_conflict",
                        lazy_gettext(
                            "The username %(user)s looks like the name of an existing account, so no account is "
                            "created for it: names that look alike could be mistaken for each other.",
                            user=repr(identity.username),
                        ),
                    ),
                )
            if identity.email and adapter.find_by_email(identity.email):
                return Decision(
                    Rule.CONFLICT,
                    error=OIDCError(
                        "account_conflict",
                        lazy_gettext(
                            "The email address %(email)s belongs to an account that may not be linked automatically.",
                            email=identity.email,
                        ),
                    ),
                )
            new = NewUser(
                username=identity.username,
                email=identity.email,
                display_name=identity.display_name or identity.username,
                access=default_access(settings),
            )
            return Decision(Rule.PROVISIONED, new_user=new, stale_row=stale)

        return Decision(
            Rule.NOT_PROVISIONED,
            error=OIDCError(
                "user_not_provisioned",
                lazy_gettext(
                    "There is no account here for the provider's user %(user)s.",
                    user=repr(identity.username or identity.subject),
                ),
            ),
        )

    def _link(self, user: Any, by: Rule, stale: IdentityRow | None) -> Decision:
        """Linking ``user``, found by ``by``: at once only for a passwordless account that is
        not an admin's (made for single sign-on); with proof for one with a password; never
        automatically for a passwordless admin account."""
        adapter = self.adapter
        if adapter.has_password(user):
            return Decision(Rule.NEEDS_PROOF, user=user, stale_row=stale, link_by=by)
        if adapter.is_admin(user):
            return Decision(
                Rule.CONFLICT,
                user=user,
                error=OIDCError(
                    "account_conflict",
                    lazy_gettext(
                        "The account %(user)s is an administrator account without a password here, so it is not "
                        "linked to a provider sign-in automatically: an administrator must link it (flask "
                        "booklore-oidc link).",
                        user=repr(adapter.get_username(user)),
                    ),
                ),
            )
        return Decision(by, user=user, stale_row=stale)

    def planned_access(self, identity: Identity, current: Access) -> Access | None:
        """The access group sync would give (built-in mapping, then the hook), before the
        last-admin guard."""
        computed = compute_access(
            self.settings.group_sync, current, default_access(self.settings), self.mapping_rows, identity.groups
        )
        if self.group_mapper is not None:
            return self.group_mapper(identity, computed)
        return computed

    def matching_rows(self, identity: Identity) -> list[MappingRow]:
        return matching(self.mapping_rows, identity.groups or [])

    # -- carrying out ------------------------------------------------------------------------

    def resolve(
        self,
        identity: Identity,
        *,
        also: Callable[[Resolution], None] | None = None,
        proven: str | None = None,
    ) -> Resolution:
        """Decide, write and commit. Raises :class:`OIDCError` (nothing written) on refusal.

        ``also(resolution)`` adds further writes (the login record, the activity row) to the
        same commit. A decision
        that needs proof returns ``Resolution(user, Rule.NEEDS_PROOF)`` with nothing written,
        unless ``proven`` is that user's id (the reader typed its password): then it links."""
        session = self.adapter.session
        for attempt in (1, 2):
            decision = self.decide(identity)
            if decision.rule == Rule.CONFLICT:
                # Decided against rows a parallel sign-in of the same person may have just
                # committed: with a fresh transaction, that person's identity decides.
                session.rollback()
                if self._identity_row(identity) is not None:
                    decision = self.decide(identity)
            if decision.error is not None:
                session.rollback()
                raise decision.error
            if decision.rule == Rule.NEEDS_PROOF:
                assert decision.link_by is not None
                if proven is None:
                    session.rollback()
                    return Resolution(decision.user, Rule.NEEDS_PROOF, link_by=decision.link_by)
                if proven != self.adapter.get_id(decision.user):
                    session.rollback()
                    raise OIDCError(
                        "account_conflict",
                        lazy_gettext(
                            "The account this sign-in would link to changed since its password was asked for; "
                            "sign in again."
                        ),
                    )
                decision = replace(decision, rule=decision.link_by)
            try:
                result = self._carry_out(identity, decision)
                if also is not None:
                    also(result)
                session.commit()
                return result
            except IntegrityError:
                session.rollback()
                if attempt == 2:
                    log.warning("Sign-in of %s kept conflicting with concurrent writes.", identity.subject)
                    raise OIDCError(
                        "account_conflict",
                        lazy_gettext("Another sign-in changed the same account at the same moment; try again."),
                    ) from None
            except BaseException:
                session.rollback()
                raise
        raise AssertionError("unreachable")

    def _carry_out(self, identity: Identity, decision: Decision) -> Resolution:
        adapter, session = self.adapter, self.adapter.session
        if decision.stale_row is not None:
            session.delete(decision.stale_row)
            session.flush()
        if decision.rule == Rule.IDENTITY:
            user = decision.user
            assert decision.row is not None
            decision.row.last_login_at = utcnow()
        elif decision.rule in (Rule.USERNAME, Rule.EMAIL):
            user = decision.user
            self._add_identity(user, identity, decision.rule)
            log.info(
                "Linked %s to the provider identity %s (by %s).",
                adapter.get_username(user),
                identity.subject,
                decision.rule,
            )
        else:
            assert decision.new_user is not None
            new = decision.new_user
            user = self.provisioner(identity, new) if self.provisioner else adapter.create_user(new)
            session.flush()
            self._add_identity(user, identity, Rule.PROVISIONED)
            log.info("Created the account %s for the provider identity %s.", new.username, identity.subject)
        if self.settings.sync_profile and decision.rule != Rule.PROVISIONED:
            self._sync_profile(user, identity)
        return Resolution(user, decision.rule, self._sync_access(user, identity))

    def _add_identity(self, user: Any, identity: Identity, by: str) -> None:
        now = utcnow()
        self.adapter.session.add(
            IdentityRow(
                issuer=identity.issuer,
                subject=identity.subject,
                user_id=self.adapter.get_id(user),
                linked_by=by,
                linked_at=now,
                last_login_at=now,
            )
        )
        self.adapter.session.flush()

    def _sync_profile(self, user: Any, identity: Identity) -> None:
        # An unverified email is never written: anyone can type any address at most providers.
        email = identity.email if identity.email_verified else None
        if email and email.lower() != (self.adapter.get_email(user) or "").lower():
            user_id = self.adapter.get_id(user)
            if any(self.adapter.get_id(u) != user_id for u in self.adapter.find_by_email(email)):
                log.warning(
                    "Not syncing the email of %s: %s belongs to another account.",
                    self.adapter.get_username(user),
                    email,
                )
                email = None
        self.adapter.update_profile(user, email=email, display_name=identity.display_name)

    def _sync_access(self, user: Any, identity: Identity) -> Access | None:
        current = self.adapter.get_access(user)
        access = self.planned_access(identity, current)
        if access is None:
            return None
        if current.is_admin and not access.is_admin:
            kept = keep_last_admin(current, access, self.adapter.count_admins())
            if kept != access:
                log.warning("Not removing admin from %s: it is the last admin.", self.adapter.get_username(user))
                access = kept
        if access != current:
            self.adapter.apply_access(user, access)
        return access
