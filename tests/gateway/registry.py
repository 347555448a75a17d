"""A one-department gateway with the audit on: a REST registry that names every applicant, read by a service.

async with serve_asgi(registry_app()) as registry:
    config = audited_config(registry, "sqlite+aiosqlite:///audit.db")
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config import GatewayConfig, parse_config

__all__ = ["NAME", "PERSON", "audited_config", "registry_app"]

NAME = "Zhang San"
PERSON = "query($id: IdNumber!) { person(idNumber: $id) { name } }"


def registry_app() -> Starlette:
    """A department that answers every key with :data:`NAME`."""

    async def person(request: Request) -> Response:
        return JSONResponse({"n": NAME})

    return Starlette(routes=[Route("/x/{key}", person)])


def audited_config(
    registry: str, audit_url: str, *, seal_key: str | None = None, operator_token: str | None = None
) -> GatewayConfig:
    """The gateway over ``registry``, auditing to ``audit_url``; ``Person.name`` needs no purpose."""
    source: dict[str, Any] = {"kind": "rest", "department": "Registry", "base_url": registry}
    source["queries"] = {"q": {"path": "/x/{key}"}}
    source["provides"] = {"Person.name": {"value": "n", "sharing": "unconditional"}}
    audit: dict[str, Any] = {"url": audit_url}
    if seal_key is not None:
        audit["seal_key"] = seal_key
    return parse_config(
        {
            "http": {} if operator_token is None else {"operator_token": operator_token},
            "security": {"production": False},
            "auth": {"development_principal": {"subject": "tax-bureau-sync", "kind": "service"}, "audit": audit},
            "sources": {"registry": source},
        },
        {},
    )
