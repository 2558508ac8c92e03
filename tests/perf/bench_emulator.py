"""Benchmark the emulator: prints figures, asserts nothing.

Run: ``python tests/perf/bench_emulator.py [--events 10000] [--gets 5000] [--threads 4]``

The emulator runs in its own process (``python -m calsync.emulator``) so that the
client's work does not share its interpreter lock. Figures:
- seeding N events through /batch/calendar/v3 (1000 inserts per batch, raw HTTP);
- events.get requests/s over loopback with httpx keep-alive clients on T threads;
- events.get requests/s with the real googleapiclient on one thread;
- a full listing of the N-event calendar with the real client at maxResults=2500;
- an incremental listing (syncToken) after 100 changes.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import httpx2 as httpx

from calsync.emulator.testing import EmulatorControl, build_calendar_service


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_emulator(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "calsync.emulator", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("emulator did not start")


def batch_body(token: str, calendar_id: str, first: int, count: int) -> tuple[str, bytes]:
    boundary = "bench" + uuid.uuid4().hex
    parts = []
    for n in range(first, first + count):
        event = {
            "id": f"bench{n:07d}",
            "summary": f"Event {n}",
            "start": {"dateTime": f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T09:00:00Z"},
            "end": {"dateTime": f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00Z"},
            "extendedProperties": {"private": {"calsync_id": str(n)}},
        }
        payload = json.dumps(event)
        parts.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <b+{n}>\r\n\r\n"
            f"POST /calendar/v3/calendars/{calendar_id}/events HTTP/1.1\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n{payload}\r\n"
        )
    body = "".join(parts) + f"--{boundary}--\r\n"
    return f'multipart/mixed; boundary="{boundary}"', body.encode()


def seed(base: str, token: str, calendar_id: str, count: int) -> float:
    started = time.perf_counter()
    with httpx.Client(timeout=120) as client:
        for first in range(0, count, 1000):
            content_type, body = batch_body(token, calendar_id, first, min(1000, count - first))
            response = client.post(
                f"{base}/batch/calendar/v3", content=body, headers={"Content-Type": content_type}
            )
            response.raise_for_status()
            assert response.text.count("HTTP/1.1 200") == min(1000, count - first)
    return time.perf_counter() - started


def gets_per_second(base: str, token: str, calendar_id: str, total: int, threads: int) -> float:
    per_thread = total // threads

    def worker() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
            for n in range(per_thread):
                url = f"{base}/calendar/v3/calendars/{calendar_id}/events/bench{n % 1000:07d}"
                client.get(url).raise_for_status()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return per_thread * threads / (time.perf_counter() - started)


def client_gets_per_second(service: Any, calendar_id: str, total: int) -> float:
    events = service.events()
    started = time.perf_counter()
    for n in range(total):
        events.get(calendarId=calendar_id, eventId=f"bench{n % 1000:07d}").execute()
    return total / (time.perf_counter() - started)


def full_listing(service: Any, calendar_id: str) -> tuple[float, int, int, str]:
    started = time.perf_counter()
    token, items, pages = None, 0, 0
    while True:
        page = (
            service.events()
            .list(calendarId=calendar_id, maxResults=2500, showDeleted=True, pageToken=token)
            .execute()
        )
        items += len(page["items"])
        pages += 1
        token = page.get("nextPageToken")
        if token is None:
            return time.perf_counter() - started, items, pages, page["nextSyncToken"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--gets", type=int, default=5_000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    port = free_port()
    process = start_emulator(port)
    base = f"http://127.0.0.1:{port}"
    try:
        with EmulatorControl(base) as control:
            user = control.create_user("bench@example.com")
        token, calendar_id = user["access_token"], user["email"]
        service = build_calendar_service(base, token)

        seconds = seed(base, token, calendar_id, args.events)
        print(
            f"seed {args.events} events via batch: {seconds:.2f} s "
            f"({args.events / seconds:.0f} inserts/s)"
        )
        rate = gets_per_second(base, token, calendar_id, args.gets, args.threads)
        print(f"events.get, httpx keep-alive, {args.threads} threads: {rate:.0f} requests/s")
        rate = client_gets_per_second(service, calendar_id, min(args.gets, 2000))
        print(f"events.get, googleapiclient, 1 thread: {rate:.0f} requests/s")
        seconds, items, pages, sync_token = full_listing(service, calendar_id)
        print(
            f"full list of {items} events, maxResults=2500, googleapiclient: "
            f"{seconds:.2f} s in {pages} pages"
        )
        for n in range(100):
            service.events().patch(
                calendarId=calendar_id, eventId=f"bench{n:07d}", body={"summary": "changed"}
            ).execute()
        started = time.perf_counter()
        changed = service.events().list(calendarId=calendar_id, syncToken=sync_token).execute()
        print(
            f"incremental list after 100 changes: {len(changed['items'])} items in "
            f"{(time.perf_counter() - started) * 1000:.1f} ms"
        )
        service.close()
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
