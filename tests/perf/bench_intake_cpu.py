"""CPU per notification of the webhook intake without sockets: prints figures, asserts
nothing.

Run: ``.venv/bin/python -m tests.perf.bench_intake_cpu [-n 60000] [--rounds 3]
[--redis redis://127.0.0.1:6379/4] [targets: api webhooks bare]``

`bench_intake` measures the servers over loopback with wrk, where the host's load moves
the figures from one round to the next more than the code does. This one feeds the same
request bytes to uvicorn's own httptools protocol (``HttpToolsProtocol``, as ``calsync
serve`` configures it) over in-memory transports, 32 connections at once on uvloop,
and reads this process's CPU time: the CPU per notification of the app and of uvicorn's
parsing and writing, without the kernel's socket work, which is the same for every
target. Targets, alternating in order round by round:

- ``api``: the app of ``calsync serve`` (`calsync.web.asgi.app_factory`);
- ``webhooks``: the app of ``calsync serve-webhooks``;
- ``bare``: the bare Starlette ceiling of `bench_intake` (with uvicorn's proxy-headers
  middleware, as the bare server runs).

It uses `bench_intake`'s scratch database, emulator and channel; no worker runs, so the
calendar's pull stays queued and the storm is answered as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import redis
import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from calsync.bootstrap import bootstrap
from calsync.config import Settings
from calsync.emulator.testing import EmulatorControl
from calsync.store.migrate import upgrade
from calsync.sync.channels import channel_token
from tests.perf import bench_intake
from tests.perf.bench_emulator import free_port, start_emulator
from tests.perf.bench_sync import environment

CONNECTIONS = 32


class _Transport(asyncio.Transport):
    """A connection's socket: answers counted, the next request fed when one is sent."""

    def __init__(self, answered: Callable[[], None]) -> None:
        super().__init__()
        self._answered = answered
        self._closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if bytes(data[:9]) == b"HTTP/1.1 ":
            self._answered()

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Client:
    """One keep-alive connection sending `left` requests, one at a time."""

    def __init__(self, protocol: HttpToolsProtocol, request: bytes) -> None:
        self.protocol = protocol
        self.request = request
        self.left = 0
        self.done: asyncio.Future[None] | None = None

    def answered(self) -> None:
        asyncio.get_running_loop().call_soon(self.next)

    def next(self) -> None:
        if self.left <= 0:
            if self.done is not None and not self.done.done():
                self.done.set_result(None)
            return
        self.left -= 1
        self.protocol.data_received(self.request)


async def measure(app: Any, request: bytes, total: int, *, proxy_headers: bool) -> float:
    """Send `total` requests over `CONNECTIONS` connections; CPU µs per request."""
    config = Config(
        app,
        http="httptools",
        loop="uvloop",
        proxy_headers=proxy_headers,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(CONNECTIONS):
        protocol = HttpToolsProtocol(config=config, server_state=state, app_state={}, _loop=loop)
        client = _Client(protocol, request)
        protocol.connection_made(_Transport(client.answered))
        clients.append(client)

    async def send(each: int) -> None:
        for client in clients:
            client.left, client.done = each, loop.create_future()
            client.next()
        await asyncio.gather(*(c.done for c in clients if c.done is not None))

    await send(max(1, total // CONNECTIONS // 5))  # warm: channel read, leases taken
    per = total // CONNECTIONS
    started = time.process_time()
    await send(per)
    return (time.process_time() - started) / (per * CONNECTIONS) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=["api", "webhooks", "bare"])
    parser.add_argument("-n", type=int, default=60_000, help="requests per target and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    args = parser.parse_args()
    print(f"machine: {bench_intake.machine()}; load average {bench_intake.load()}")
    emulator_port, api_port = free_port(), free_port()
    emulator = start_emulator(emulator_port)
    base = f"http://127.0.0.1:{emulator_port}"
    env = environment(base, api_port, bench_intake.DATABASE) | {"CALSYNC_REDIS_URL": args.redis}
    services = bootstrap(Settings.from_env(env))
    queue = redis.Redis.from_url(args.redis)
    try:
        upgrade(services.engine)
        with EmulatorControl(base) as control:
            channel = bench_intake.watched_channel(services, control)
        calendar_id = channel.calendar_id
        assert calendar_id is not None
        token = channel_token(services.settings.encryption_keys, str(channel.id))
        request = (
            f"POST {bench_intake.ROUTE} HTTP/1.1\r\nHost: 127.0.0.1:{api_port}\r\n"
            f"X-Goog-Channel-ID: {channel.id}\r\nX-Goog-Channel-Token: {token}\r\n"
            "X-Goog-Channel-Expiration: Tue, 01 Dec 2026 00:00:00 GMT\r\n"
            f"X-Goog-Resource-ID: {channel.resource_id}\r\n"
            "X-Goog-Resource-URI: https://www.googleapis.com/calendar/v3/x\r\n"
            "X-Goog-Resource-State: exists\r\nX-Goog-Message-Number: 2\r\n\r\n"
        ).encode()
        os.environ.update(env)  # the apps' factories read the environment
        apps = {name: build(name) for name in args.targets}
        figures: dict[str, list[float]] = {name: [] for name in args.targets}

        async def rounds() -> None:
            for n in range(args.rounds):
                for name in args.targets if n % 2 == 0 else args.targets[::-1]:
                    bench_intake.reset(services, calendar_id, queue)
                    cpu = await measure(apps[name], request, args.n, proxy_headers=name == "bare")
                    figures[name].append(cpu)
                    print(f"  [{n + 1}] {name:9s} {cpu:5.1f} us CPU per notification", flush=True)

        uvloop.run(rounds())
        print(f"summary (load average {bench_intake.load()}): median CPU per notification")
        ceiling = sorted(figures["bare"])[len(figures["bare"]) // 2] if "bare" in figures else None
        for name, values in figures.items():
            median = sorted(values)[len(values) // 2]
            ratio = f" ({median / ceiling:.0%} of the ceiling's)" if ceiling else ""
            each = ", ".join(f"{v:.1f}" for v in values)
            print(f"  {name:9s} {median:5.1f} us{ratio}; rounds {each}")
    finally:
        services.close()
        queue.close()
        emulator.terminate()
        emulator.wait(10)


def build(name: str) -> Any:
    """The app of target `name`, built from the environment as its server builds it."""
    if name == "bare":
        return bench_intake.bare_app()
    if name == "webhooks":
        from calsync.web.webhook_app import app_factory as webhooks_factory

        return webhooks_factory()
    from calsync.web.asgi import app_factory

    return app_factory()


if __name__ == "__main__":
    main()
