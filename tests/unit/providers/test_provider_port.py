"""The provider error tree and the port's value types."""

from __future__ import annotations

import pytest

from calsync.providers import errors
from calsync.providers.base import CalendarInfo, CalendarProvider, ChangesPage

ALL_ERRORS = [
    errors.AuthRevoked,
    errors.SyncTokenExpired,
    errors.PreconditionFailed,
    errors.Conflict,
    errors.NotFound,
    errors.RateLimited,
    errors.QuotaExceeded,
    errors.Transient,
    errors.Permanent,
]


@pytest.mark.parametrize("error_class", ALL_ERRORS)
def test_every_error_is_a_provider_error_with_status_and_reason(
    error_class: type[errors.ProviderError],
) -> None:
    error = error_class("boom", status=400, reason="why")
    assert isinstance(error, errors.ProviderError)
    assert (error.message, error.status, error.reason) == ("boom", 400, "why")
    assert error_class.__name__ in repr(error)


def test_only_transient_and_rate_limited_are_retryable() -> None:
    assert {e for e in ALL_ERRORS if e.retryable} == {errors.Transient, errors.RateLimited}


def test_rate_limited_carries_retry_after() -> None:
    error = errors.RateLimited("slow down", retry_after=2.5, status=429)
    assert error.retry_after == 2.5
    assert "retry_after=2.5" in repr(error)
    assert errors.RateLimited().retry_after is None


def test_calendar_info_writable() -> None:
    assert CalendarInfo(calendar_id="c", summary="s", timezone="UTC", access_role="writer").writable
    assert not CalendarInfo(
        calendar_id="c", summary="s", timezone="UTC", access_role="reader"
    ).writable


class _Partial:
    def list_calendars(self) -> list[CalendarInfo]:
        return []


def test_protocol_is_checkable_and_a_partial_adapter_does_not_satisfy_it() -> None:
    assert not isinstance(_Partial(), CalendarProvider)
    assert ChangesPage(events=(), next_sync_token="t").next_page_token is None
