"""Blinker signals. Every signal is sent with the application as sender
(``current_app._get_current_object()``); the keyword arguments are listed with each."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A user signed in through the provider. Keyword arguments: ``user`` (the host user object),
#: ``identity`` (:class:`~flask_booklore_oidc.claims.Identity`), ``rule`` (which §6 rule picked
#: the user: ``"identity"``, ``"username"``, ``"email"`` or ``"provisioned"``).
login_succeeded = _signals.signal("booklore-oidc-login-succeeded")

#: A sign-in failed. Keyword arguments: ``code`` (the error code of SPEC §10) and ``detail``.
login_failed = _signals.signal("booklore-oidc-login-failed")

#: A new host user was created from an identity. Keyword arguments: ``user``, ``identity``.
user_provisioned = _signals.signal("booklore-oidc-user-provisioned")

#: An existing host user was linked to an identity. Keyword arguments: ``user``, ``identity``,
#: ``by`` (``"username"``, ``"email"`` or ``"admin"``).
account_linked = _signals.signal("booklore-oidc-account-linked")

#: Group sync changed or confirmed a user's access. Keyword arguments: ``user``, ``access``
#: (:class:`~flask_booklore_oidc.adapter.Access`), ``groups`` (list of str).
access_synced = _signals.signal("booklore-oidc-access-synced")

#: A user signed out. Keyword arguments: ``user``, ``provider_logout`` (bool).
logged_out = _signals.signal("booklore-oidc-logged-out")

#: The stored settings changed. Keyword arguments: ``changed`` (set of setting names).
settings_changed = _signals.signal("booklore-oidc-settings-changed")
