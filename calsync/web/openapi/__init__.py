"""``GET /openapi.json``: the API's OpenAPI 3.1 document, generated from the app's routes
and from the models of its bodies.

The paths come from the routes the app really serves (`build_document(app.routes)`) and
from what its middleware answers before routing (`ANSWERED_BEFORE_ROUTING`), so a route
cannot be left out; each (method, path) is described by an entry of `OPERATIONS`
(its summary, parameters and statuses). A route without an entry is still listed, marked
``x-undocumented``, and `undocumented` names it: a test fails while any exists. Every
body's schema is generated from the pydantic models of `calsync.web.models` (request
bodies closed, ``additionalProperties: false``; error ``details`` typed). What the
middleware adds to every answer is added to every operation (`document`):
``X-Request-ID``, the ``RateLimit-*`` headers and a 429 where a limit applies, a 503 with
``Retry-After``; ``ETag`` and ``Location`` where the events routes set them.

One module each: `document` (the builder and the endpoint), `operations` (what each
operation is) and `parts` (the building blocks of an operation's description).
"""

from __future__ import annotations

from calsync.web.openapi.document import build_document, openapi_json, schemas, undocumented
from calsync.web.openapi.operations import ANSWERED_BEFORE_ROUTING, OPERATIONS

__all__ = [
    "ANSWERED_BEFORE_ROUTING",
    "OPERATIONS",
    "build_document",
    "openapi_json",
    "schemas",
    "undocumented",
]
