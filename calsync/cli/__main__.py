"""``python -m calsync.cli``: the ``calsync`` command without its console script."""

from __future__ import annotations

from calsync.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
