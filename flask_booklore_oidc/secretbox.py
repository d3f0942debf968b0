"""Encryption at rest for the client secret and stored ID tokens.

Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from the app's ``SECRET_KEY`` by HKDF, so
rotating ``SECRET_KEY`` makes old values unreadable instead of silently wrong.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["InvalidToken", "SecretBox"]


class SecretBox:
    def __init__(self, secret_key: str | bytes) -> None:
        if not secret_key:
            raise RuntimeError(
                "flask-booklore-oidc needs the app's SECRET_KEY to encrypt secrets at rest; "
                "set app.config['SECRET_KEY']."
            )
        material = secret_key.encode() if isinstance(secret_key, str) else secret_key
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"flask-booklore-oidc", info=b"secret-at-rest"
        ).derive(material)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        """Decrypt; raises :class:`InvalidToken` when the key changed or the value is damaged."""
        return self._fernet.decrypt(sealed.encode()).decode()
