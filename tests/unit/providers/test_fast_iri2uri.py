"""`fast_iri2uri` gives httplib2's `iri2uri` answer for every URI, and is the one
``httplib2.Http.request`` runs once calsync's Google client is imported (decision IU3)."""

from __future__ import annotations

from typing import Any

import httplib2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.providers.google.api import _IRI2URI, fast_iri2uri


def _outcome(convert: Any, uri: Any) -> tuple[str, Any]:
    """What `convert` gives for `uri`: its answer, or the class of what it raised."""
    try:
        return ("answer", convert(uri))
    except Exception as err:  # the two must fail alike too
        return ("raised", type(err))


_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))
_PARTS = st.text(alphabet=st.sampled_from("aZ09-._~%/?#[]@!$&'()*+,;= :\t\r\nü\u00a0\u2028日"))


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8080/calendar/v3/calendars/a%40b.com/events?syncToken=CPD-_x&alt=json",
        "https://www.googleapis.com/calendar/v3/users/me/calendarList?maxResults=250",
        "HTTP://Example.COM:80/a/../b/./c?",
        "http://example.com/path#",
        "http://example.com/p?q=1#frag",
        "http://a..b/",
        "http://" + "a" * 64 + ".com/",
        "http://bücher.example/straße?q=日本",
        "http://example.com/\u00a0/\ue000",
        "relative/path?x=1",
        "",
        "::::",
        b"http://example.com/bytes",
        None,
    ],
)
def test_known_uris_convert_as_httplib2_converts_them(uri: Any) -> None:
    assert _outcome(fast_iri2uri, uri) == _outcome(_IRI2URI, uri)


@settings(max_examples=400)
@given(
    uri=st.one_of(
        st.text(_CHARS, max_size=80),
        st.builds(
            lambda scheme, host, path, query: f"{scheme}://{host}/{path}?{query}",
            st.sampled_from(["http", "https", "HTTP", "x"]),
            _PARTS,
            _PARTS,
            _PARTS,
        ),
    )
)
def test_any_uri_converts_as_httplib2_converts_it(uri: str) -> None:
    assert _outcome(fast_iri2uri, uri) == _outcome(_IRI2URI, uri)


def test_httplib2_requests_convert_their_uri_with_it() -> None:
    assert httplib2.iri2uri is fast_iri2uri
    assert _IRI2URI is httplib2.iri2uri.__globals__["_IRI2URI"]
    assert _IRI2URI.__module__ == "httplib2.iri2uri"
