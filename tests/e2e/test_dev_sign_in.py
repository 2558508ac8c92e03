"""Signing in to ``calsync dev`` as a person does: the banner's command, a browser that
says ``localhost`` where calsync says ``127.0.0.1``, and no ``login_hint`` at all."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx2 as httpx
import pytest

from tests.e2e.dev_process import DevProcess, bearer, free_port, sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    run = DevProcess(tmp_path_factory.mktemp("dev"), port=free_port(), emulator_port=free_port())
    try:
        yield run.start()
    finally:
        run.close()


def me(dev: DevProcess, token: str) -> dict[str, str]:
    answer = httpx.get(f"{dev.base}/me", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_banners_sign_in_command_signs_in_a_second_user(dev: DevProcess) -> None:
    command = next(
        (line.strip() for line in dev.output().splitlines() if "/auth/google?login_hint=" in line),
        None,
    )
    assert command is not None, dev.output()
    assert command.startswith("curl ")

    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False
    )

    assert result.returncode == 0, result.stderr
    answer = httpx.Response(200, content=result.stdout).json()
    assert answer["user"]["email"] == "ann@example.com"
    assert me(dev, answer["token"])["email"] == "ann@example.com"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_sign_in_works_whichever_loopback_name_the_browser_uses(dev: DevProcess, host: str) -> None:
    email = f"bob-{host.replace('.', '-')}@example.com"

    answer = sign_in(dev.base, email, host=host)

    assert answer.status_code == 200, answer.text
    assert me(dev, answer.json()["token"])["email"] == email


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.inputs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.action = found.get("action")
        elif tag == "input" and found.get("name"):
            self.inputs.append(str(found["name"]))
            if found.get("type") == "hidden":
                self.fields[str(found["name"])] = found.get("value") or ""


def test_without_login_hint_the_emulator_asks_for_the_account(dev: DevProcess) -> None:
    with httpx.Client(follow_redirects=True, timeout=20) as browser:
        # When the browser starts a sign-in without naming the account
        chooser = browser.get(f"{dev.base}/auth/google")
        # Then Google (the emulator) shows a form asking for it
        assert chooser.status_code == 200, chooser.text
        assert chooser.headers["content-type"].startswith("text/html")
        form = _Form()
        form.feed(chooser.text)
        assert form.action is not None
        assert "login_hint" in form.inputs
        assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", form.fields["state"])
        # And submitting it completes the sign-in as that person
        done = browser.get(
            urljoin(str(chooser.url), form.action),
            params=form.fields | {"login_hint": "carol@example.com"},
        )
    assert done.status_code == 200, done.text
    assert me(dev, done.json()["token"])["email"] == "carol@example.com"
