"""The commands the docs give a developer work as written after ``make dev``: in a fresh
shell (``calsync`` is not on the ``PATH``), in the folder ``make dev`` runs in, with only
the port changed to the test's."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.e2e.dev_process import DevProcess, bearer, eventually, free_port

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
API_DOC = REPOSITORY / "docs" / "api.md"


def shell_blocks(doc: Path) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", doc.read_text(), flags=re.M | re.S)


def fresh_path() -> str:
    """The ``PATH`` of a shell that never activated the virtualenv."""
    entries = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(entry for entry in entries if ".venv" not in entry)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    """``calsync dev`` in a folder laid out like the repository after ``make dev``."""
    folder = tmp_path_factory.mktemp("checkout")
    (folder / ".venv").symlink_to(REPOSITORY / ".venv")
    run = DevProcess(folder, port=free_port(), emulator_port=free_port())
    try:
        yield run.start()
    finally:
        run.close()


def shell(dev: DevProcess, script: str) -> str:
    """Run ``script`` as typed, on the test's port, in the dev folder; its stdout."""
    script = script.replace("127.0.0.1:8000", f"127.0.0.1:{dev.port}")
    script = script.replace("localhost:8000", f"localhost:{dev.port}")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=dev.folder,
        env={"PATH": fresh_path(), "HOME": str(dev.folder)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{script}\n{result.stderr}"
    return result.stdout


def test_the_api_guides_examples_run_as_written(dev: DevProcess) -> None:
    blocks = shell_blocks(API_DOC)
    sign_in, calendars = blocks[0], blocks[1]
    creates = [block for block in blocks if "localhost:8000/events -d" in block]
    listing = next(block for block in blocks if "expand=true" in block)
    sync = next(block for block in blocks if "8000/sync" in block)
    assert len(creates) >= 2, "the guide's create examples"

    def listed() -> list[dict[str, object]]:
        found: list[dict[str, object]] = json.loads(shell(dev, sign_in + calendars))["calendars"]
        return found

    mine = eventually(listed, "my calendars listed")
    assert mine[0]["google_calendar_id"] == "me@example.com"
    created = json.loads(shell(dev, sign_in + creates[0]))
    assert created["title"] == "Planning", created
    instances = json.loads(shell(dev, sign_in + listing))["events"]
    assert len(instances) == 4  # the weekly series' March instances, expanded
    for example in creates[1:]:  # the other fields' examples (Meet link, event type)
        answer = json.loads(shell(dev, sign_in + example))
        assert "error" not in answer, (example, answer)
        assert answer["id"], (example, answer)
    assert "202" in shell(dev, sign_in + sync.replace("curl ", "curl -s -w '%{http_code}' "))


def test_the_token_command_of_the_docs_works_in_the_dev_folder(dev: DevProcess) -> None:
    command = ".venv/bin/calsync token --email ops@example.com --role admin"
    assert ".venv/bin/calsync token --email" in API_DOC.read_text()

    token = shell(dev, command).strip()

    me = httpx.get(f"{dev.base}/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "ops@example.com"
    assert me.json()["role"] == "admin"
