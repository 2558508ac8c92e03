"""``python -m calsync.emulator [--host H] [--port P]``: serve the emulator."""

from __future__ import annotations

import argparse

from calsync.emulator.server import run


def main() -> None:
    parser = argparse.ArgumentParser(description="calsync Google Calendar emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    run(args.host, args.port)


if __name__ == "__main__":
    main()
