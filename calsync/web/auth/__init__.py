"""Authentication primitives for the web layer: calsync's JWTs and OAuth state.

Submodules are imported explicitly (``calsync.web.auth.tokens``,
``calsync.web.auth.oauth_state``); this package imports nothing at import time.
"""
