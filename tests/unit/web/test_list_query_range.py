"""`GET /events` query bounds at the ends of the calendar: cut to the listed range or a
422 naming the parameter, never an overflow."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from calsync.web.errors import APIError
from calsync.web.list_query import LISTED_FROM, LISTED_UNTIL, parse_list_query

ZONES = ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"]


@pytest.mark.parametrize("user_zone", ZONES)
def test_the_whole_calendar_is_cut_to_the_listed_range(user_zone: str) -> None:
    query = parse_list_query(
        {"start_date": "0001-01-01", "end_date": "9999-12-31"}, user_zone=user_zone
    )
    assert (query.start, query.end) == (LISTED_FROM, LISTED_UNTIL)


@pytest.mark.parametrize("user_zone", ZONES)
def test_a_range_inside_the_listed_one_is_kept_as_given(user_zone: str) -> None:
    query = parse_list_query(
        {"start_date": "2031-03-04T10:00:00+14:00", "end_date": "2031-03-05"}, user_zone=user_zone
    )
    assert query.start == datetime(2031, 3, 3, 20, tzinfo=UTC)
    assert query.end is not None
    assert query.end > query.start


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start_date": "9999-12-31", "end_date": "9999-12-31"}, "start_date"),
        (
            {"start_date": "9999-12-31T23:59:59-14:00", "end_date": "9999-12-31T23:59:59Z"},
            "start_date",
        ),
        (
            {"start_date": "0001-01-01T00:00:00+14:00", "end_date": "0001-01-02T00:00:00Z"},
            "end_date",
        ),
        ({"start_date": "0001-01-01", "end_date": "0001-01-01"}, "end_date"),
        ({"start_date": "0001-01-01", "end_date": "9999-12-31", "expand": "true"}, "end_date"),
    ],
)
@pytest.mark.parametrize("user_zone", ZONES)
def test_a_range_past_an_end_is_a_422_naming_the_parameter(
    params: dict[str, str], field: str, user_zone: str
) -> None:
    with pytest.raises(APIError) as caught:
        parse_list_query(params, user_zone=user_zone)
    assert caught.value.status == 422
    assert [d["field"] for d in caught.value.details] == [field]
