"""Who gets signed in (SPEC §6): the one place that decides, in order:

1. allowed-groups gate (before anything is written), 2. an identity already linked,
3. link by username, 4. link by verified email (exactly one match), 5. auto-provision,
6. otherwise ``user_not_provisioned``.

Writes go through the adapter's session and are committed together; a unique-constraint race
with another process (two first sign-ins of one new person) is resolved by rolling back and
deciding again, which then finds the identity the other process wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .adapter import Access, NewUser, UserAdapter
from .claims import Identity
from .errors import OIDCError
from .models import Identity as IdentityRow
from .models import utcnow
from .settings import Settings

log = logging.getLogger(__name__)

#: ``@oidc.user_provisioner``: (identity, proposed NewUser) -> host user object (added to session)
Provisioner = Callable[[Identity, NewUser], Any]
#: ``@oidc.group_mapper``: (identity, current Access, Settings) -> new Access or None (no change)
GroupMapper = Callable[[Identity, Access, Settings], "Access | None"]


@dataclass(frozen=True)
class Resolution:
    user: Any
    #: the rule that picked the user: "identity", "username", "email" or "provisioned"
    rule: str
    #: the access group sync applied, if it ran
    access: Access | None = None


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
        provisioner: Provisioner | None = None,
        group_mapper: GroupMapper | None = None,
    ) -> None:
        self.adapter = adapter
        self.settings = settings
        self.provisioner = provisioner
        self.group_mapper = group_mapper

    # -- gate ------------------------------------------------------------------------------

    def check_allowed(self, identity: Identity) -> None:
        allowed = self.settings.allowed_groups
        if not allowed:
            return
        groups = identity.groups or []
        if not set(groups) & set(allowed):
            raise OIDCError(
                "access_denied_group",
                f"{identity.username or identity.subject} is not a member of an allowed group.",
            )

    # -- decision ----------------------------------------------------------------------------

    def resolve(self, identity: Identity) -> Resolution:
        """Decide, write and commit. Raises :class:`OIDCError` (nothing written) on refusal."""
        self.check_allowed(identity)
        session = self.adapter.session
        for attempt in (1, 2):
            try:
                result = self._decide_and_write(identity)
                session.commit()
                return result
            except IntegrityError:
                session.rollback()
                if attempt == 2:
                    log.warning("Sign-in of %s kept conflicting with concurrent writes.", identity.subject)
                    raise OIDCError(
                        "account_conflict",
                        "Another sign-in changed the same account at the same moment; try again.",
                    ) from None
            except BaseException:
                session.rollback()
                raise
        raise AssertionError("unreachable")

    def _identity_row(self, identity: Identity) -> IdentityRow | None:
        return self.adapter.session.execute(
            select(IdentityRow).where(IdentityRow.issuer == identity.issuer, IdentityRow.subject == identity.subject)
        ).scalar_one_or_none()

    def _decide_and_write(self, identity: Identity) -> Resolution:
        adapter, settings, session = self.adapter, self.settings, self.adapter.session
        row = self._identity_row(identity)
        if row is not None:
            user = adapter.get_by_id(row.user_id)
            if user is not None:
                row.last_login_at = utcnow()
                if settings.sync_profile:
                    self._sync_profile(user, identity)
                return Resolution(user, "identity", self._sync_access(user, identity))
            # The user vanished without its identity (deleted outside the ORM): forget it.
            session.delete(row)
            session.flush()

        if settings.link_by_username and identity.username:
            user = adapter.get_by_username(identity.username, case_sensitive=settings.username_case_sensitive)
            if user is not None:
                self._link(user, identity, "username")
                return Resolution(user, "username", self._sync_access(user, identity))

        if settings.link_by_email and identity.email and identity.email_verified:
            matches = adapter.find_by_email(identity.email)
            if len(matches) == 1:
                self._link(matches[0], identity, "email")
                return Resolution(matches[0], "email", self._sync_access(matches[0], identity))
            if len(matches) > 1:
                log.warning("Not linking by email: %d accounts share %s.", len(matches), identity.email)

        if settings.auto_provision:
            user = self._provision(identity)
            return Resolution(user, "provisioned", self._sync_access(user, identity, new=True))

        raise OIDCError(
            "user_not_provisioned",
            f"There is no account here for the provider's user {identity.username or identity.subject!r}.",
        )

    # -- writes ------------------------------------------------------------------------------

    def _link(self, user: Any, identity: Identity, by: str) -> None:
        user_id = self.adapter.get_id(user)
        other = self.adapter.session.execute(
            select(IdentityRow).where(IdentityRow.issuer == identity.issuer, IdentityRow.user_id == user_id)
        ).scalar_one_or_none()
        if other is not None:
            raise OIDCError(
                "account_conflict",
                f"The account {self.adapter.get_username(user)!r} is already linked to another "
                "identity at this provider.",
            )
        now = utcnow()
        self.adapter.session.add(
            IdentityRow(
                issuer=identity.issuer,
                subject=identity.subject,
                user_id=user_id,
                linked_by=by,
                linked_at=now,
                last_login_at=now,
            )
        )
        self.adapter.session.flush()
        log.info(
            "Linked %s to the provider identity %s (by %s).", self.adapter.get_username(user), identity.subject, by
        )
        if self.settings.sync_profile:
            self._sync_profile(user, identity)

    def _provision(self, identity: Identity) -> Any:
        adapter, settings = self.adapter, self.settings
        if not identity.username:
            raise OIDCError(
                "user_not_provisioned",
                f"The provider sent no username (claim {settings.claim_username!r}), so no account can be created.",
            )
        if adapter.get_by_username(identity.username, case_sensitive=False) is not None:
            raise OIDCError(
                "account_conflict",
                f"The username {identity.username!r} is taken by an account that may not be linked automatically.",
            )
        if identity.email and adapter.find_by_email(identity.email):
            raise OIDCError(
                "account_conflict",
                f"The email address {identity.email} belongs to an account that may not be linked automatically.",
            )
        new = NewUser(
            username=identity.username,
            email=identity.email,
            display_name=identity.display_name or identity.username,
            access=default_access(settings),
        )
        user = self.provisioner(identity, new) if self.provisioner else adapter.create_user(new)
        adapter.session.flush()
        now = utcnow()
        adapter.session.add(
            IdentityRow(
                issuer=identity.issuer,
                subject=identity.subject,
                user_id=adapter.get_id(user),
                linked_by="provisioned",
                linked_at=now,
                last_login_at=now,
            )
        )
        adapter.session.flush()
        log.info("Created the account %s for the provider identity %s.", identity.username, identity.subject)
        return user

    def _sync_profile(self, user: Any, identity: Identity) -> None:
        email = identity.email
        if email and email.lower() != (self.adapter.get_email(user) or "").lower():
            owners = [
                u for u in self.adapter.find_by_email(email) if self.adapter.get_id(u) != self.adapter.get_id(user)
            ]
            if owners:
                log.warning(
                    "Not syncing email of %s: %s belongs to another account.", self.adapter.get_username(user), email
                )
                email = None
        self.adapter.update_profile(user, email=email, display_name=identity.display_name)

    def _sync_access(self, user: Any, identity: Identity, *, new: bool = False) -> Access | None:
        if self.group_mapper is None:
            return None
        current = self.adapter.get_access(user)
        access = self.group_mapper(identity, current, self.settings)
        if access is None:
            return None
        if current.is_admin and not access.is_admin and self.adapter.count_admins() <= 1:
            log.warning("Not removing admin from %s: it is the last admin.", self.adapter.get_username(user))
            access = Access(True, access.permissions, access.libraries)
        if access != current:
            self.adapter.apply_access(user, access)
        return access
