"""docs/api-reference.md is generated from the app's OpenAPI document and kept current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from calsync.web.openapi_markdown import DEFAULT_OUTPUT, fetch_document, main, render


def test_the_committed_reference_matches_the_openapi_document() -> None:
    expected = render(fetch_document())
    assert DEFAULT_OUTPUT.read_text() == expected, (
        "docs/api-reference.md is out of date: run python -m calsync.web.openapi_markdown"
    )


def test_every_operation_of_the_document_is_in_the_reference() -> None:
    document = fetch_document()
    text = DEFAULT_OUTPUT.read_text()
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"### {method.upper()} {path}\n" in text
    for name in document["components"]["schemas"]:
        assert f"### {name}\n" in text


def test_render_shows_parameters_bodies_responses_and_schemas() -> None:
    document: dict[str, Any] = {
        "info": {"title": "t", "version": "1", "description": "d"},
        "security": [{"bearer": []}],
        "paths": {
            "/things/{id}": {
                "put": {
                    "summary": "Replace a | thing",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                        },
                    },
                    "responses": {"200": {"description": "OK"}, "404": {"description": "gone"}},
                }
            },
            "/healthz": {"get": {"summary": "up", "security": [], "responses": {}}},
        },
        "components": {
            "schemas": {
                "Thing": {
                    "type": "object",
                    "properties": {
                        "name": {"type": ["string", "null"], "maxLength": 5},
                        "kind": {"enum": ["a", "b"]},
                    },
                    "required": ["name"],
                    "additionalProperties": False,
                }
            }
        },
    }
    text = render(document)
    assert "### PUT /things/{id}" in text
    assert "Replace a \\| thing" in text
    assert "| `id` | path | string | yes |  |" in text
    assert "Body (required): `application/json` [Thing](#thing)" in text
    assert "| 404 | gone |  |" in text
    assert "| `name` | string or null | yes | max length 5 |" in text
    assert '| `kind` | `"a"` \\| `"b"` | no |  |' in text
    assert "Other fields are rejected." in text
    healthz = text.split("### GET /healthz")[1]
    assert "*public*" in healthz.split("###")[0]


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "api-reference.md"
    stale.write_text("old\n")
    assert main(["--check", "--output", str(stale)]) == 1
    assert main(["--output", str(stale)]) == 0
    assert main(["--check", "--output", str(stale)]) == 0
