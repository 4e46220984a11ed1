"""PayPal's OpenAPI documents (in ../shared) as validators of what the sandbox and the client send.

``assert_matches(document, schema, obj)`` checks ``obj`` against the named component schema and
also that it carries no member the schema does not define (the documents rarely forbid extra
members, so a misspelt field would otherwise pass). Tests skip when ../shared is absent.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "provider-specs" / "paypal"


def specs_present() -> bool:
    return SPECS.is_dir()


@cache
def _document(name: str) -> dict[str, Any]:
    if not specs_present():
        pytest.skip("../shared/provider-specs/paypal is not here")
    loaded: dict[str, Any] = json.loads((SPECS / f"{name}.json").read_text())
    return loaded


@cache
def _validator(name: str, schema: str) -> Any:
    document = _document(name)
    return jsonschema_rs.Draft4Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    )


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _properties(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any] | None:
    """Every member the schema defines (through $ref and allOf), or None when it allows any."""
    node = _resolve(document, node)
    found: dict[str, Any] = {}
    open_ended = node.get("type") not in (None, "object") or "additionalProperties" in node
    for part in node.get("allOf", []):
        inner = _properties(document, part)
        if inner is None:
            return None
        found.update(inner)
    found.update(node.get("properties", {}))
    if not found and (open_ended or "allOf" not in node):
        return None
    return found


def unknown_members(document: dict[str, Any], node: dict[str, Any], obj: Any, where: str = "") -> list[str]:
    node = _resolve(document, node)
    if isinstance(obj, list):
        items = node.get("items")
        return (
            [
                m
                for i, item in enumerate(obj)
                for m in unknown_members(document, items or {}, item, f"{where}[{i}]")
            ]
            if items
            else []
        )
    if not isinstance(obj, dict):
        return []
    properties = _properties(document, node)
    if properties is None:
        return []
    problems = [f"{where}.{key}" for key in obj if key not in properties]
    for key, value in obj.items():
        if key in properties:
            problems += unknown_members(document, properties[key], value, f"{where}.{key}")
    return problems


def assert_matches(name: str, schema: str, obj: Any) -> None:
    """``obj`` is a valid ``schema`` of PayPal's document ``name`` and has no undocumented member."""
    errors = [str(error).splitlines()[0] for error in _validator(name, schema).iter_errors(obj)]
    assert not errors, f"{schema} does not match {name}: {errors}"
    document = _document(name)
    extra = unknown_members(document, {"$ref": f"#/components/schemas/{schema}"}, obj)
    assert not extra, f"members {schema} of {name} does not define: {extra}"
