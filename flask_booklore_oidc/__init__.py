"""OpenID Connect sign-in for Flask book apps, the way Booklore does it.

::

    from flask_booklore_oidc import BookloreOIDC
    oidc = BookloreOIDC(app, db=db, user_model=User)

Everything a host needs is exported here; the submodules are the implementation.
"""

from . import signals
from .adapter import Access, NewUser, SQLAlchemyUserAdapter, UserAdapter
from .claims import Identity
from .config import SESSION_KEYS
from .errors import ErrorCode, OIDCError
from .extension import BookloreOIDC
from .identities import LinkedIdentity
from .mapping import MappingRow
from .migrate import SchemaError
from .provisioning import Rule
from .settings import Settings
from .views import render_unavailable as database_unavailable

__all__ = [
    "SESSION_KEYS",
    "Access",
    "BookloreOIDC",
    "ErrorCode",
    "Identity",
    "LinkedIdentity",
    "MappingRow",
    "NewUser",
    "OIDCError",
    "Rule",
    "SQLAlchemyUserAdapter",
    "SchemaError",
    "Settings",
    "UserAdapter",
    "database_unavailable",
    "signals",
]
__version__ = "0.2.0"
