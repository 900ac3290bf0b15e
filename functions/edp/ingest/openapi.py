"""The ingest API's OpenAPI 3.1 document, built from the event contract.

The document is kept in the repository at ``functions/edp/ingest/openapi.json`` (packaged with
the deployed function and served at ``/openapi.json``); the event schemas inside it are copied
from ``schemas/events/event.schema.json`` by :func:`build_document`, and a test fails when the
file and the contract drift. Regenerate with ``python -m edp.ingest.openapi``.

Example:
    >>> doc = build_document()
    >>> doc["openapi"], "/v1/events" in doc["paths"], "/v1/track" in doc["paths"]
    ('3.1.0', True, True)
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Final

from edp.contracts.events import SCHEMA_VERSION, event_json_schema

DOCUMENT_PATH: Final = Path(__file__).with_name("openapi.json")
_REF_PREFIX: Final = "#/$defs/"
_COMPONENTS: Final = "#/components/schemas/"


def _rewrite_refs(node: Any) -> Any:
    """Point JSON Schema ``$defs`` references at OpenAPI components."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF_PREFIX):
                out[key] = _COMPONENTS + value[len(_REF_PREFIX) :]
            else:
                out[key] = _rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def _contract_schemas() -> dict[str, Any]:
    defs = copy.deepcopy(event_json_schema()["$defs"])
    return {name: _rewrite_refs(schema) for name, schema in defs.items()}


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> Any:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


_TS = {"type": ["string", "null"], "format": "date-time"}
_ID = {"type": ["string", "number", "null"]}


def _segment_schemas() -> dict[str, Any]:
    message = _obj(
        {
            "type": {
                "type": "string",
                "enum": ["track", "page", "screen", "identify"],
                "description": "Call type; implied by the route for single calls.",
            },
            "event": {
                "type": "string",
                "description": "Track event name (Segment e-commerce "
                "spec names map to GA4: 'Product Added' -> add_to_cart, ...).",
            },
            "name": {"type": ["string", "null"], "description": "Page or screen name."},
            "category": {"type": ["string", "null"], "description": "Page category."},
            "userId": _ID,
            "anonymousId": _ID,
            "messageId": {
                "type": ["string", "null"],
                "description": "Idempotency key; non-UUID ids become a UUIDv5 event_id.",
            },
            "timestamp": _TS,
            "originalTimestamp": _TS,
            "sentAt": _TS,
            "context": {
                "type": ["object", "null"],
                "description": "Segment context (library, "
                "page, userAgent, os, device, app, screen, locale, campaign).",
            },
            "properties": {"type": ["object", "null"]},
            "traits": {"type": ["object", "null"]},
            "integrations": {"type": ["object", "null"]},
            "channel": {"type": ["string", "null"], "description": "RudderStack channel."},
            "writeKey": {
                "type": "string",
                "description": "analytics.js-style key in the body "
                "(when no Authorization/X-Write-Key header is sent).",
            },
        },
        description="One Segment/RudderStack tracking-API message.",
    )
    batch = _obj(
        {
            "batch": {"type": "array", "items": {"$ref": _COMPONENTS + "SegmentMessage"}},
            "sentAt": _TS,
            "context": {"type": ["object", "null"]},
            "writeKey": {"type": "string"},
        },
        ["batch"],
        description="Segment/RudderStack batch (analytics-python, analytics-node, ...).",
    )
    result = _obj(
        {
            "index": {"type": ["integer", "null"], "description": "Position in the request."},
            "error": {"$ref": _COMPONENTS + "FailureType"},
            "reason": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
        ["index", "error", "reason"],
    )
    return {
        "SegmentMessage": message,
        "SegmentBatch": batch,
        "FailureType": {
            "type": "string",
            "enum": ["size_violation", "schema_violation", "format_error", "auth"],
            "description": "Snowplow-style failure type (also on the bad-events topic).",
        },
        "EventResult": result,
        "IngestResponse": _obj(
            {
                "success": {"type": "boolean"},
                "accepted": {"type": "integer", "minimum": 0},
                "rejected": {"type": "integer", "minimum": 0},
                "results": {"type": "array", "items": {"$ref": _COMPONENTS + "EventResult"}},
            },
            ["success", "accepted", "rejected"],
        ),
        "Refusal": _obj(
            {
                "success": {"const": False},
                "error": {"type": "string"},
                "reason": {"type": "string"},
            },
            ["success", "error", "reason"],
            description="A request refused as a whole.",
        ),
    }


def _json_content(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _COMPONENTS + ref}}}


def _responses(ok: str) -> dict[str, Any]:
    refusal = _json_content("Refusal")
    results = _json_content("IngestResponse")
    return {
        "200": {"description": ok, "content": results},
        "207": {
            "description": "Some events accepted (published), some refused: see results.",
            "content": results,
        },
        "400": {
            "description": "Nothing accepted: unparseable body or every event invalid.",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": _COMPONENTS + "IngestResponse"},
                            {"$ref": _COMPONENTS + "Refusal"},
                        ]
                    }
                }
            },
        },
        "401": {"description": "Missing or unknown write key.", "content": refusal},
        "403": {"description": "Origin not allowed for this write key.", "content": refusal},
        "408": {"description": "Body not received within the deadline.", "content": refusal},
        "413": {
            "description": "Body, batch or every event over the size limits.",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": _COMPONENTS + "IngestResponse"},
                            {"$ref": _COMPONENTS + "Refusal"},
                        ]
                    }
                }
            },
        },
        "503": {
            "description": "The event bus did not take the events, or every upload slot is "
            "busy; nothing accepted. Retry.",
            "headers": {"Retry-After": {"schema": {"type": "string"}}},
            "content": refusal,
        },
    }


def _post(summary: str, body_schema: dict[str, Any], ok: str, tag: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "tags": [tag],
            "description": (
                "Bodies may be compressed (Content-Encoding: gzip or deflate); the decompressed "
                "size is capped as well. Content-Type is not checked (analytics.js sends "
                "text/plain to avoid a CORS preflight)."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": body_schema},
                    "text/plain": {"schema": body_schema},
                },
            },
            "responses": _responses(ok),
        }
    }


def _get(summary: str, content_type: str, schema: dict[str, Any], extra: dict[str, Any]) -> Any:
    return {
        "get": {
            "summary": summary,
            "tags": ["operations"],
            "security": [],
            "responses": {
                "200": {"description": "OK", "content": {content_type: {"schema": schema}}},
                **extra,
            },
        }
    }


def build_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the ingest API."""
    schemas = _contract_schemas()
    schemas.update(_segment_schemas())
    native_body = {
        "oneOf": [
            {"$ref": _COMPONENTS + "ClientEvent"},
            {"$ref": _COMPONENTS + "EventBatch"},
            {"type": "array", "items": {"$ref": _COMPONENTS + "ClientEvent"}, "minItems": 1},
        ]
    }
    message = {"$ref": _COMPONENTS + "SegmentMessage"}
    paths: dict[str, Any] = {
        "/v1/events": _post(
            "Send one event, an array of events or {events: [...], sent_at}",
            native_body,
            "Every event accepted.",
            "native",
        ),
    }
    for call in ("track", "page", "screen", "identify"):
        paths[f"/v1/{call}"] = _post(
            f"Segment/RudderStack-compatible {call} call (analytics.js posts it to /v1/{call[0]})",
            message,
            "Accepted.",
            "segment",
        )
    paths["/v1/batch"] = _post(
        "Segment/RudderStack-compatible batch (also /v1/b for analytics.js, /v1/import)",
        {"$ref": _COMPONENTS + "SegmentBatch"},
        "Every message accepted.",
        "segment",
    )
    beacon = _post(
        "RudderStack JS SDK beacon batch (navigator.sendBeacon: the write key as ?writeKey=)",
        {"$ref": _COMPONENTS + "SegmentBatch"},
        "Every message accepted.",
        "segment",
    )
    beacon["post"]["parameters"] = [
        {"name": "writeKey", "in": "query", "required": False, "schema": {"type": "string"}}
    ]
    paths["/beacon/v1/batch"] = beacon
    status = _obj({"status": {"type": "string"}}, ["status"])
    paths["/healthz"] = _get("Liveness", "application/json", status, {})
    paths["/readyz"] = _get(
        "Readiness: ready only when the publisher reaches the topics",
        "application/json",
        status,
        {
            "503": {
                "description": "Not ready (publisher cannot reach Pub/Sub).",
                "content": _json_content("Refusal"),
            }
        },
    )
    paths["/openapi.json"] = _get("This document", "application/json", {"type": "object"}, {})
    paths["/metrics"] = _get("Prometheus metrics", "text/plain", {"type": "string"}, {})
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "EDP event ingest API",
            "version": SCHEMA_VERSION,
            "description": (
                "Behaviour events from apps. Limits: 500 events and 512 KiB per request "
                "(decompressed), 32 KiB per event (EDP_MAX_BATCH_EVENTS, EDP_MAX_REQUEST_BYTES, "
                "EDP_MAX_EVENT_BYTES). Client input never yields a 5xx; 503 means retry."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"basicAuth": []}, {"writeKey": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The write key as the username, empty password (Segment).",
                },
                "writeKey": {"type": "apiKey", "in": "header", "name": "X-Write-Key"},
            },
        },
    }


def render() -> str:
    """The document as the text kept in the repository."""
    return json.dumps(build_document(), indent=2, sort_keys=False) + "\n"


def main() -> int:
    """Write the document to :data:`DOCUMENT_PATH` (``--check``: fail if it differs)."""
    text = render()
    if "--check" in sys.argv[1:]:
        current = DOCUMENT_PATH.read_text(encoding="utf-8") if DOCUMENT_PATH.exists() else ""
        return 0 if current == text else 1
    DOCUMENT_PATH.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
