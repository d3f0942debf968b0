"""Reading mapped claims (SPEC §4 claim mappings) into an :class:`Identity`.

A mapping is a claim name, a dot path into nested objects (``realm_access.roles``,
``resource_access.my-client.roles``), a URN-style name (``urn:zitadel:iam:org:project:roles``)
or several of those separated by commas, tried in order. A name that exists as a key as a whole
wins over the same text read as a dot path, so ``https://example.com/groups`` works too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .i18n import gettext

_MISSING = object()


def _lookup(claims: Mapping[str, Any], path: str) -> Any:
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def resolve_claim(sources: Sequence[Mapping[str, Any]], spec: str) -> Any:
    """The first value found for any alternative of ``spec`` in any source, in order, or
    ``None``. Each alternative is looked for in every source before the next alternative."""
    for alternative in (a.strip() for a in spec.split(",")):
        if not alternative:
            continue
        for source in sources:
            value = _lookup(source, alternative)
            if value is not _MISSING and value is not None:
                return value
    return None


def claim_present(sources: Sequence[Mapping[str, Any]], spec: str) -> bool:
    return resolve_claim(sources, spec) is not None


def validate_mapping(spec: str) -> str | None:
    """A message naming what is wrong with a claim mapping, or ``None`` when it is usable."""
    alternatives = [a.strip() for a in spec.split(",")]
    if not spec.strip():
        return gettext("must name at least one claim")
    for alternative in alternatives:
        if not alternative:
            return gettext("has an empty alternative (two commas in a row, or a trailing comma)")
        if any(ch.isspace() for ch in alternative):
            return gettext("claim name %(name)s contains whitespace", name=repr(alternative))
        dotted_badly = alternative.startswith(".") or alternative.endswith(".") or ".." in alternative
        if dotted_badly and "://" not in alternative:
            return gettext("dot path %(path)s has an empty segment", path=repr(alternative))
    return None


def groups_from(value: Any) -> list[str] | None:
    """Normalise a groups claim: a list, a single string, or an object whose keys are the
    groups (Zitadel's role claims). ``None`` means the claim is absent ("unknown")."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Mapping):
        return [str(k) for k in value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None and not isinstance(v, (dict, list))]
    return [str(value)]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _exact(value: Any) -> str | None:
    """A claim as it is, untrimmed: a username is compared exactly (SPEC §6), and one with
    surrounding whitespace is refused, not repaired (:func:`.names.username_problem`)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value)
    return text or None


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in, with the mapped claims. Given to hooks and signals.

    ``groups`` is ``None`` when the groups claim is absent (unknown), ``[]`` when it is empty.
    ``username`` is exactly what the provider sent (not trimmed); the other texts are trimmed.
    """

    issuer: str
    subject: str
    username: str | None
    email: str | None
    email_verified: bool
    display_name: str | None
    groups: list[str] | None
    claims: Mapping[str, Any] = field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class ClaimMapping:
    username: str = "preferred_username"
    email: str = "email"
    display_name: str = "name"
    groups: str = "groups"

    def all(self) -> tuple[str, ...]:
        return (self.username, self.email, self.display_name, self.groups)

    def missing_from(self, claims: Mapping[str, Any]) -> list[str]:
        """Mapped claims the ID token does not carry (userinfo may have them)."""
        return [spec for spec in self.all() if not claim_present([claims], spec)]

    def identity(
        self, issuer: str, id_claims: Mapping[str, Any], userinfo: Mapping[str, Any] | None = None
    ) -> Identity:
        """Read each mapped claim from the ID token first, then from userinfo."""
        sources: list[Mapping[str, Any]] = [id_claims] if userinfo is None else [id_claims, userinfo]
        merged = dict(userinfo or {})
        merged.update(id_claims)
        verified = resolve_claim(sources, "email_verified")
        return Identity(
            issuer=issuer,
            subject=str(id_claims["sub"]),
            username=_exact(resolve_claim(sources, self.username)),
            email=_text(resolve_claim(sources, self.email)),
            email_verified=verified is True or (isinstance(verified, str) and verified.lower() == "true"),
            display_name=_text(resolve_claim(sources, self.display_name)),
            groups=groups_from(resolve_claim(sources, self.groups)),
            claims=merged,
        )
