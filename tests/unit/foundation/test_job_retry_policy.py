"""The jobs' retry decision (`calsync.jobs.retry_provider_failures`) as a decision table."""

from __future__ import annotations

import dramatiq
import pytest
import sqlalchemy as sa

from calsync.jobs import PROVIDER_RETRIES, UNEXPECTED_RETRIES, retry_provider_failures
from calsync.providers.errors import NotFound, Permanent, RateLimited, Transient
from calsync.store.secrets import SecretDecryptError


@pytest.mark.parametrize(
    ("exception", "retries", "retried"),
    [
        (Transient("503"), 0, True),
        (Transient("503"), PROVIDER_RETRIES - 1, True),
        (Transient("503"), PROVIDER_RETRIES, False),
        (RateLimited("slow down", retry_after=2), 0, True),
        (NotFound("gone"), 0, False),
        (Permanent("bad request"), 0, False),
        (dramatiq.Retry("rate limited", delay=1000), PROVIDER_RETRIES * 2 - 1, True),
        (dramatiq.Retry("rate limited", delay=1000), PROVIDER_RETRIES * 2, False),
        # not a provider's answer: retried a few times (the use case recorded it)
        (SecretDecryptError(), 0, True),
        (sa.exc.OperationalError("SELECT 1", {}, Exception("down")), 1, True),
        (ZeroDivisionError(), UNEXPECTED_RETRIES - 1, True),
        (ZeroDivisionError(), UNEXPECTED_RETRIES, False),
    ],
)
def test_what_a_job_retries(exception: BaseException, retries: int, retried: bool) -> None:
    assert retry_provider_failures(retries, exception) is retried


def test_a_base_exception_that_is_no_error_is_never_retried() -> None:
    assert retry_provider_failures(0, KeyboardInterrupt()) is False
