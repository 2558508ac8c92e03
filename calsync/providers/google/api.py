"""The Calendar v3 request builders and connections every Google client of a process shares.

`calendar_api` builds google-api-python-client's resources once per API base (they carry
no credentials and no connection); `OrjsonModel` decodes their answers; `HttpPool` holds
one ``httplib2.Http`` per thread. Nothing here sends a request: `calls.GoogleCalls` does.
"""

from __future__ import annotations

import threading
from typing import Any, Final, NamedTuple

import httplib2
import orjson
from googleapiclient.discovery import build
from googleapiclient.model import JsonModel

__all__ = ["DEFAULT_TIMEOUT", "CalendarApi", "HttpPool", "OrjsonModel", "calendar_api"]

DEFAULT_TIMEOUT: Final = 30.0


class CalendarApi(NamedTuple):
    """The Calendar v3 resources calsync calls, by which requests are built."""

    events: Any
    calendar_list: Any
    calendars: Any
    channels: Any


_apis: dict[str, CalendarApi] = {}
_apis_lock = threading.Lock()


def calendar_api(api_base: str) -> CalendarApi:
    """The Calendar v3 resources for ``api_base``, built once per process and shared.

    Building them (discovery document, one Python method per API method) takes
    milliseconds per resource; making a request from them takes microseconds. They
    carry no credentials and no connection: each request is executed with its
    client's own ``http``.
    """
    endpoint = api_base.rstrip("/") + "/calendar/v3/"
    with _apis_lock:
        api = _apis.get(endpoint)
        if api is None:
            service = build(
                "calendar",
                "v3",
                http=httplib2.Http(),  # placeholder: never used, requests get their own
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": endpoint},
                model=OrjsonModel(),
            )
            api = CalendarApi(
                service.events(), service.calendarList(), service.calendars(), service.channels()
            )
            _apis[endpoint] = api
        return api


#: A run of 19 digits, once `_DIGITS` made every digit a 0 (bytes.translate and a
#: substring search are several times faster than a regular expression on megabytes).
_DIGITS: Final = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_DIGITS: Final = b"0" * 19


class OrjsonModel(JsonModel):  # type: ignore[misc]  # the library is untyped
    """google-api-python-client's JSON model, decoding answers with orjson (a listing
    page of 2,500 events is megabytes of JSON, decoded on the pull's thread).

    The answer is the standard model's: orjson decodes the JSON it accepts to equal
    values, and anything it refuses (invalid UTF-8, lone surrogates, ``NaN``, ...) goes
    to the standard model, which decides as before. So does an answer with a run of 19
    digits or more, which may be an integer orjson would read as a float (beyond 64
    bits), where the standard decoder keeps an int.
    """

    def deserialize(self, content: Any) -> Any:
        if not isinstance(content, bytes) or _LONG_DIGITS in content.translate(_DIGITS):
            return super().deserialize(content)
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            return super().deserialize(content)
        if self._data_wrapper and "data" in body:
            body = body["data"]
        return body


class HttpPool:
    """One ``httplib2.Http`` per thread (it is not thread-safe), reused by every client.

    Connections stay open between calls and jobs on the same thread; :meth:`close` shuts
    them all (an ``Http`` reconnects if used again).
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._timeout = timeout
        self._local = threading.local()
        self._all: list[httplib2.Http] = []
        self._lock = threading.Lock()

    def get(self) -> httplib2.Http:
        """This thread's ``Http``."""
        http: httplib2.Http | None = getattr(self._local, "http", None)
        if http is None:
            http = httplib2.Http(timeout=self._timeout)
            self._local.http = http
            with self._lock:
                self._all.append(http)
        return http

    def close(self) -> None:
        """Close every connection of every thread's ``Http``."""
        with self._lock:
            for http in self._all:
                http.close()
