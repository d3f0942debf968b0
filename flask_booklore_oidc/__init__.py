"""OpenID Connect sign-in for Flask book apps, the way Booklore does it.

::

    from flask_booklore_oidc import BookloreOIDC
    oidc = BookloreOIDC(app, db=db, user_model=User)
"""

from .extension import BookloreOIDC

__all__ = ["BookloreOIDC"]
__version__ = "0.1.0"
