"""What a sign-in costs, and what flask-booklore-oidc costs everyone else (SPEC §12).

Run with ``make bench`` or ``python -m benchmarks [--quick] [--profile]``; see README.md here.
"""
