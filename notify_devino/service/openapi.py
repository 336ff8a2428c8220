"""The OpenAPI 3.1 document of the service's HTTP API, served at ``/v1/openapi.json``.

The request bodies' schemas are the pydantic models the handlers validate with, so the
document cannot drift from them; ``tests/service/test_openapi.py`` holds the handlers to the
rest (every route documented, every answer matching its documented schema).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import BaseModel

REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF)
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


TIME = {"type": ["string", "null"], "format": "date-time"}
NULLABLE_STRING = {"type": ["string", "null"]}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": NULLABLE_STRING,
                "expected": NULLABLE_STRING,
                "notification_id": {"type": "string"},
                "problems": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        }
    },
}

ACCEPTED = {
    "type": "object",
    "required": ["id", "state", "deliveries", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "state": {"const": "queued"},
        "route": NULLABLE_STRING,
        "deliveries": {"type": "integer", "minimum": 1},
        "created_at": {"type": "string", "format": "date-time"},
    },
}

STATES = [
    "queued",
    "claimed",
    "sending",
    "accepted",
    "failed",
    "unknown",
    "delivered",
    "undelivered",
    "expired",
    "late",
]

TRANSITION = {
    "type": "object",
    "required": ["from", "to", "at"],
    "properties": {
        "from": {"enum": [*STATES, None]},
        "to": {"enum": STATES},
        "at": {"type": "string", "format": "date-time"},
        "detail": NULLABLE_STRING,
    },
}

DELIVERY = {
    "type": "object",
    "required": [
        "id",
        "channel",
        "address",
        "step",
        "state",
        "final",
        "message_ids",
        "created_at",
        "transitions",
    ],
    "properties": {
        "id": {"type": "integer"},
        "channel": {"type": "string"},
        "address": {"type": "string"},
        "contact": NULLABLE_STRING,
        "step": {"type": "integer", "minimum": 0},
        "state": {"enum": STATES},
        "final": {"type": "boolean"},
        "message_ids": {"type": "array", "items": {"type": "string"}},
        "provider_state": NULLABLE_STRING,
        "error": NULLABLE_STRING,
        "attempts": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "accepted_at": TIME,
        "fallback_at": TIME,
        "final_at": TIME,
        "transitions": {"type": "array", "items": {"$ref": "#/components/schemas/Transition"}},
    },
}

NOTIFICATION = {
    "type": "object",
    "required": ["id", "text", "created_at", "state", "request", "deliveries"],
    "properties": {
        "id": {"type": "string"},
        "text": {"type": "string"},
        "route": NULLABLE_STRING,
        "created_at": {"type": "string", "format": "date-time"},
        "state": {"enum": ["in_progress", "done"]},
        "request": {"type": "object"},
        "deliveries": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}},
    },
}

CHANNELS = {
    "type": "object",
    "required": ["channels", "routes"],
    "properties": {
        "channels": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "type", "default", "operations"],
                "properties": {
                    "name": {"type": "string"},
                    "type": {"type": "string"},
                    "default": {"type": "boolean"},
                    "operations": {"type": "array", "items": {"type": "string"}},
                    "batch_size": {"type": ["integer", "null"]},
                },
            },
        },
        "routes": {"type": "array", "items": {"type": "string"}},
    },
}

ESTIMATE = {
    "type": "object",
    "required": ["channel", "segments", "characters", "recipients", "warnings", "too_long"],
    "properties": {
        "channel": {"type": "string"},
        "segments": {"type": "integer", "minimum": 0},
        "characters": {"type": "integer", "minimum": 0},
        "recipients": {"type": "integer", "minimum": 1},
        "encoding": NULLABLE_STRING,
        "cost": NULLABLE_STRING,
        "currency": NULLABLE_STRING,
        "warnings": {"type": "array", "items": {"type": "string"}},
        "too_long": {"type": "boolean"},
    },
}

INBOX = {
    "type": "object",
    "required": ["messages", "next"],
    "properties": {
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["cursor", "channel", "sender", "recipient", "text", "received_at"],
                "properties": {
                    "cursor": {"type": "integer"},
                    "channel": {"type": "string"},
                    "sender": {"type": "string"},
                    "recipient": {"type": "string"},
                    "text": {"type": "string"},
                    "received_at": {"type": "string", "format": "date-time"},
                },
            },
        },
        "next": {"type": "integer", "minimum": 0},
    },
}

STATUS = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string"},
        "problems": {"type": "array", "items": {"type": "string"}},
    },
}


def _json(ref: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }
    if headers:
        out["headers"] = headers
    return out


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "the request is not valid (the body says what and what is expected)",
        401: "no valid bearer token",
        403: "the token lacks the scope",
        404: "not found",
        409: "a request with this Idempotency-Key is still being committed",
        413: "the body is too large",
        422: "the Idempotency-Key was used with another request",
        503: "the outbox is full, cannot commit, or the service is shutting down",
    }
    retry = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return {str(c): _json("Error", words[c], retry if c in (409, 503) else None) for c in codes}


SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
AUTH_ERRORS = (401, 403)


@functools.cache
def _document() -> dict[str, Any]:
    from ..alertmanager.receiver import openapi_paths as alertmanager_paths
    from .app import EstimateRequest
    from .outbox import NotificationRequest

    schemas: dict[str, Any] = {
        "Error": ERROR,
        "Accepted": ACCEPTED,
        "Transition": TRANSITION,
        "Delivery": DELIVERY,
        "Notification": NOTIFICATION,
        "Channels": CHANNELS,
        "Estimate": ESTIMATE,
        "Inbox": INBOX,
        "Status": STATUS,
    }
    request_ref = _schema(NotificationRequest, schemas)
    estimate_ref = _schema(EstimateRequest, schemas)
    request_id = {
        "name": "X-Request-Id",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "echoed in the response when it is 1 to 64 of A-Z a-z 0-9 . _ : -; "
        "otherwise (absent, or anything else) the service makes a new one",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "notify-devino",
            "version": "1",
            "description": "The durable notification service: an outbox with an HTTP API.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
        "paths": {
            "/v1/notifications": {
                "post": {
                    "operationId": "postNotification",
                    "summary": "Queue a notification; answered after the commit",
                    "security": SECURITY,
                    "parameters": [
                        request_id,
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": request_ref}},
                    },
                    "responses": {
                        "202": _json(
                            "Accepted",
                            "committed to the outbox (or, with Idempotent-Replayed: true, the "
                            "first response to this key)",
                            {
                                "Location": {"schema": {"type": "string"}},
                                "Idempotent-Replayed": {"schema": {"enum": ["true", "false"]}},
                            },
                        ),
                        **_errors(400, *AUTH_ERRORS, 409, 413, 422, 503),
                    },
                }
            },
            "/v1/notifications/{id}": {
                "get": {
                    "operationId": "getNotification",
                    "summary": "A notification: every recipient on every channel tried",
                    "security": SECURITY,
                    "parameters": [
                        request_id,
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": _json("Notification", "the notification"),
                        **_errors(*AUTH_ERRORS, 404, 503),
                    },
                }
            },
            "/v1/channels": {
                "get": {
                    "operationId": "getChannels",
                    "summary": "The configured channels and routes",
                    "security": SECURITY,
                    "parameters": [request_id],
                    "responses": {
                        "200": _json("Channels", "channels"),
                        **_errors(*AUTH_ERRORS, 503),
                    },
                }
            },
            "/v1/estimate": {
                "post": {
                    "operationId": "postEstimate",
                    "summary": "What a text would take and cost on a channel (nothing is sent)",
                    "security": SECURITY,
                    "parameters": [request_id],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": estimate_ref}},
                    },
                    "responses": {
                        "200": _json("Estimate", "the estimate"),
                        **_errors(400, *AUTH_ERRORS, 413, 503),
                    },
                }
            },
            "/v1/inbox": {
                "get": {
                    "operationId": "getInbox",
                    "summary": "Inbound messages stored after a cursor, each once, in order",
                    "security": SECURITY,
                    "parameters": [
                        request_id,
                        {
                            "name": "after",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": _json("Inbox", "messages; pass 'next' as 'after' to read on"),
                        **_errors(400, *AUTH_ERRORS, 503),
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenapiJson",
                    "summary": "This document",
                    "responses": {"200": {"description": "the OpenAPI document"}},
                }
            },
            "/v1/openapi.yaml": {
                "get": {
                    "operationId": "getOpenapiYaml",
                    "summary": "This document, in YAML",
                    "responses": {"200": {"description": "the OpenAPI document"}},
                }
            },
            "/-/healthy": {
                "get": {
                    "operationId": "getHealthy",
                    "summary": "The process answers",
                    "responses": {"200": _json("Status", "healthy")},
                }
            },
            "/-/ready": {
                "get": {
                    "operationId": "getReady",
                    "summary": "The store commits and the channels and workers are started",
                    "responses": {
                        "200": _json("Status", "ready"),
                        "503": _json("Status", "not ready, with the problems"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "getMetrics",
                    "summary": "Prometheus metrics",
                    "security": SECURITY,
                    "responses": {
                        "200": {
                            "description": "the Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_errors(*AUTH_ERRORS),
                    },
                }
            },
            **alertmanager_paths(),
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy)."""
    return copy.deepcopy(_document())


__all__ = ["document"]
