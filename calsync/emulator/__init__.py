"""calsync.emulator: a faithful emulator of Google Calendar API v3 and Google OAuth 2.0.

Entry points: ``app.create_emulator_app``, ``state.EmulatorState``,
``server.EmulatorServer`` / ``server.run``, and ``testing`` for test helpers.
See ``docs/emulator.md``.
"""
