"""The load of `bench_api_load` as a wrk script: each request a random user's week read
(``expand=true``) or, with the given share, a create; and the figures wrk prints."""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

CREATE_SUMMARY = "bench-create"


def week_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Monday 00:00 UTC of this week and the Monday after."""
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return monday, monday + timedelta(days=7)


WRK_SCRIPT = """
local tokens = {%(tokens)s}
local week = "%(week)s"
local body = '%(body)s'
creates = 0  -- global: done() reads it with thread:get
local statuses = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local token = tokens[math.random(#tokens)]
  local headers = {["Authorization"] = "Bearer " .. token}
  if math.random() < %(creates)s then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", "/events", headers, body)
  end
  return wrk.format("GET", "/events?" .. week, headers)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 then creates = creates + 1 end
end

function done(summary, latency, requests)
  local created = 0
  for _, thread in ipairs(threads) do
    created = created + (thread:get("creates") or 0)
  end
  io.write(string.format("LATENCY p50=%%.3f p95=%%.3f p99=%%.3f max=%%.3f\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("CREATED %%d\\n", created))
end
"""


def wrk_script(tokens: list[str], now: datetime, creates: float) -> Path:
    monday, sunday = week_bounds(now)
    week = f"start_date={monday.date()}&end_date={(sunday - timedelta(days=1)).date()}"
    week += "&expand=true&limit=100"
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    body = json.dumps(
        {
            "title": CREATE_SUMMARY,
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=30)).isoformat(),
        }
    )
    script = Path(tempfile.mkdtemp(prefix="calsync-load-")) / "load.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "tokens": ",".join(f'"{t}"' for t in tokens),
            "week": week,
            "body": body,
            "creates": repr(creates),
        }
    )
    return script


def run_wrk(script: Path, url: str, connections: int, seconds: int) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    argv += ["--latency", "-s", str(script), url]
    print(f"  $ {shlex.join(argv)}", flush=True)
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    figures: dict[str, Any] = {"output": output}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("LATENCY"):
            for pair in line.split()[1:]:
                name, value = pair.split("=")
                figures[name] = float(value)
        elif line.startswith("CREATED"):
            figures["created"] = int(line.split()[1])
        elif line.startswith("Requests/sec:"):
            figures["rate"] = float(line.split()[1])
        elif " requests in " in line:
            figures["requests"] = int(line.split()[0])
        elif line.startswith("Non-2xx"):
            figures["non_2xx"] = int(line.rsplit(" ", 1)[1])
        elif line.startswith("Socket errors:"):
            figures["socket_errors"] = line.split(":", 1)[1].strip()
    return figures
