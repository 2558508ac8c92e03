"""The garbage collector pause of pulls: held by any pull of the process, released by the
last one, and never turning on a collector that was off before."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from calsync.sync.pull import _collector_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_overlapping_pulls_resume_the_collector_when_the_last_one_ends() -> None:
    gc.enable()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with _collector_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with _collector_paused():
            second_in.set()
            first_out.wait(5)
            seen["after the first ended"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"after the first ended": False}
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off_and_errors_release_the_pause() -> None:
    gc.disable()
    with pytest.raises(RuntimeError), _collector_paused():
        raise RuntimeError("the pull failed")
    assert not gc.isenabled()
    gc.enable()
    with _collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
