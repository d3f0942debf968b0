"""Ready-made integrations of the extension into existing book apps (SPEC §15).

Each module is optional and imports its host only when used:
:mod:`flask_booklore_oidc.contrib.calibreweb` for Calibre-Web (``pip install flask-booklore-oidc[calibre-web]``).
"""
