"""``calsync dev`` pointed at an emulator of the simulation's own, as a process to kill.

Run as ``python -m tests.sim.dev_process --state DIR --port P --google URL --keys K1,K2``.
It is `calsync.devserver.run_dev` - the same wiring as ``calsync dev`` (SQLite in
`DIR`, the in-process broker, worker threads, the scheduler thread, the API) - with two
differences the simulation needs: Google is the emulator at `URL`, which outlives this
process (``calsync dev`` starts its own, in memory, so a restart would begin with an
empty Google), and the settings a fault run needs (a 10 s sync lease, so that a killed
process's pulls are taken over quickly; no minimum interval between pulls; keys given
on the command line, for a key rotation).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from calsync.config import Settings
from calsync.devserver import run_dev

#: Sync lease of the simulated installations (production default 300 s): a pull cut off
#: by a kill is taken over after this long.
SYNC_LEASE_SECONDS = 10


def sim_settings(base: Settings, *, google: str, public_url: str) -> Settings:
    """`base` with Google at `google`, pushes to `public_url`, and the simulation's
    timings (see the module docstring); the API's per-user rate limit is lifted, since
    one simulated user sends far more than a person would. Each simulated user comes
    from an address of their own (`tests.sim.clients.address_of`), named in
    ``X-Forwarded-For`` through the local proxy calsync trusts: hundreds of users from one
    address would be refused by the per-address limit, as they should be."""
    return dataclasses.replace(
        base,
        google_api_base=google,
        google_oauth_base=google,
        google_client_id="calsync-dev",
        google_client_secret="calsync-dev-secret",
        public_url=public_url,
        run_emulator=False,
        sync_lease_seconds=SYNC_LEASE_SECONDS,
        sync_min_interval_seconds=0.0,
        api_rate_limit_per_minute=100_000,
        trusted_proxies=("127.0.0.1/32",),
        log_level="WARNING",
    )


def embedded_settings(state: Path, *, google: str, port: int, keys: tuple[str, ...]) -> Settings:
    """The embedded installation's settings (its SQLite file and secrets in `state`)."""
    base = Settings.embedded(state)
    if keys:
        base = dataclasses.replace(base, encryption_keys=keys)
    return sim_settings(base, google=google, public_url=f"http://127.0.0.1:{port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--google", required=True)
    parser.add_argument("--keys", default="", help="encryption keys, newest first")
    args = parser.parse_args()
    keys = tuple(k for k in args.keys.split(",") if k)
    settings = embedded_settings(args.state, google=args.google, port=args.port, keys=keys)
    run_dev(settings, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
