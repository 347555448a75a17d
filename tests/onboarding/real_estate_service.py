"""The real-estate registry (不动产登记中心): a REST API in the style of many provincial platforms.

* Every answer is HTTP 200 with a status code in the body: ``{"code": "0000", "msg": "成功", "data": {...}}``;
  ``"1004"`` 无记录 (nothing held for the key), ``"4010"`` 令牌无效 (a missing, unknown or expired token),
  ``"4001"`` 参数错误.
* OAuth2 client credentials at its own ``POST /oauth/token``, the client authenticated by ``client_secret_post``
  (``client_id`` and ``client_secret`` in the form; HTTP Basic is refused), tokens living ``token_lifetime``
  seconds by the registry's ``clock`` (injected, so tests move time instead of sleeping).
* ``GET /api/certificates?zjhm=&page=&size=``: a holder's certificates, paged
  (``data: {total, page, size, list}``); ``GET /api/certificate?bdcqzh=``: one certificate.
* Decimal amounts as strings (``MJ`` "89.50" m², ``JYJG`` "1250000.00" yuan), times as ``YYYY-MM-DD HH:MM:SS``.
* ``GET /openapi.json``: an OpenAPI 3.0 document describing all of it.

::

    registry = RealEstateRegistry(holdings)
    async with serve_asgi(registry.app()) as url:
        ...
        registry.clock.advance(3)  # every token issued so far has expired
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.onboarding.holdings import Certificate, Holdings

__all__ = ["DEFAULT_TOKEN_LIFETIME", "ManualClock", "RealEstateRegistry", "certificate_record", "openapi_document"]

DEFAULT_TOKEN_LIFETIME = 2
_MAX_SIZE = 50


@dataclass
class ManualClock:
    """Seconds that pass only when a test says so."""

    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def certificate_record(certificate: Certificate) -> dict[str, str]:
    """A certificate as the registry writes it: its own field names, amounts and times as strings."""
    return {
        "BDCQZH": certificate.number,
        "QLR": certificate.holder,
        "ZJHM": certificate.id_number,
        "ZL": certificate.address,
        "MJ": f"{certificate.area:.2f}",
        "JYJG": f"{certificate.price:.2f}",
        "DJSJ": certificate.registered_at.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _ok(data: Any) -> Response:
    return JSONResponse({"code": "0000", "msg": "成功", "data": data})


def _status(code: str, msg: str) -> Response:
    return JSONResponse({"code": code, "msg": msg})


@dataclass
class RealEstateRegistry:
    """The registry over ``holdings``; ``tokens_issued`` and ``refused_tokens`` count what it saw."""

    holdings: Holdings
    client_id: str = "onewindow"
    client_secret: str = "bdc-client-secret-7d41"
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    clock: Callable[[], float] = field(default_factory=ManualClock)
    tokens_issued: int = 0
    refused_tokens: int = 0
    queries: list[dict[str, str]] = field(default_factory=list)
    _tokens: dict[str, float] = field(default_factory=dict)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/api/certificates", self._certificates),
                Route("/api/certificate", self._certificate),
                Route("/openapi.json", self._openapi),
            ]
        )

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        if request.headers.get("authorization"):  # only client_secret_post is registered for this client
            return JSONResponse({"error": "invalid_client", "error_description": "使用 client_secret_post"}, 401)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return JSONResponse({"error": "invalid_client"}, 401)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = self.clock() + self.token_lifetime
        self.tokens_issued += 1
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime})

    def _authorized(self, request: Request) -> bool:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expires = self._tokens.get(token)
        if expires is None or self.clock() >= expires:
            self.refused_tokens += 1
            return False
        return True

    async def _certificates(self, request: Request) -> Response:
        self.queries.append(dict(request.query_params))
        if not self._authorized(request):
            return _status("4010", "令牌无效")
        try:
            page = int(request.query_params.get("page", "1"))
            size = int(request.query_params.get("size", "10"))
        except ValueError:
            return _status("4001", "参数错误")
        if page < 1 or not 1 <= size <= _MAX_SIZE or not request.query_params.get("zjhm"):
            return _status("4001", "参数错误")
        held = self.holdings.certificates_of(request.query_params["zjhm"])
        if not held:
            return _status("1004", "无记录")
        shown = held[(page - 1) * size : page * size]
        return _ok({"total": len(held), "page": page, "size": size, "list": [certificate_record(c) for c in shown]})

    async def _certificate(self, request: Request) -> Response:
        self.queries.append(dict(request.query_params))
        if not self._authorized(request):
            return _status("4010", "令牌无效")
        certificate = self.holdings.certificate(request.query_params.get("bdcqzh", ""))
        if certificate is None:
            return _status("1004", "无记录")
        return _ok(certificate_record(certificate))

    async def _openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["code", "msg"],
        "properties": {
            "code": {"type": "string", "description": "状态码：0000 成功，1004 无记录，4001 参数错误，4010 令牌无效"},
            "msg": {"type": "string", "description": "状态说明"},
            "data": data,
        },
    }


_TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"}


def openapi_document() -> dict[str, Any]:
    """The registry's OpenAPI 3.0 description: its paths, the body envelope, the certificate record."""
    certificate = {
        "type": "object",
        "required": ["BDCQZH", "QLR", "ZJHM", "ZL", "MJ", "JYJG", "DJSJ"],
        "properties": {
            "BDCQZH": {"type": "string", "description": "不动产权证书号"},
            "QLR": {"type": "string", "description": "权利人"},
            "ZJHM": {"type": "string", "description": "权利人证件号码"},
            "ZL": {"type": "string", "description": "坐落"},
            "MJ": {"type": "string", "format": "decimal", "description": "面积（平方米）"},
            "JYJG": {"type": "string", "format": "decimal", "description": "交易价格（元）"},
            "DJSJ": _TIME | {"description": "登记时间 yyyy-MM-dd HH:mm:ss"},
        },
    }
    page = {
        "type": "object",
        "required": ["total", "page", "size", "list"],
        "properties": {
            "total": {"type": "integer", "description": "总记录数"},
            "page": {"type": "integer", "description": "页码，从 1 开始"},
            "size": {"type": "integer", "description": "每页条数"},
            "list": {"type": "array", "items": {"$ref": "#/components/schemas/Certificate"}},
        },
    }
    bearer: list[dict[str, list[str]]] = [{"oauth2": []}]
    return {
        "openapi": "3.0.3",
        "info": {"title": "不动产登记信息查询接口", "version": "2.1"},
        "paths": {
            "/api/certificates": {
                "get": {
                    "operationId": "listCertificates",
                    "summary": "按权利人证件号码分页查询不动产权证书",
                    "security": bearer,
                    "parameters": [
                        {"name": "zjhm", "in": "query", "required": True, "schema": {"type": "string"}},
                        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
                        {
                            "name": "size",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_SIZE, "default": 10},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "处理结果（状态见 code）",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PageAnswer"}}},
                        }
                    },
                }
            },
            "/api/certificate": {
                "get": {
                    "operationId": "getCertificate",
                    "summary": "按证书号查询不动产权证书",
                    "security": bearer,
                    "parameters": [{"name": "bdcqzh", "in": "query", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {
                            "description": "处理结果（状态见 code）",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/CertificateAnswer"}}
                            },
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Certificate": certificate,
                "CertificatePage": page,
                "PageAnswer": _envelope({"$ref": "#/components/schemas/CertificatePage"}),
                "CertificateAnswer": _envelope({"$ref": "#/components/schemas/Certificate"}),
            },
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {}}},
                }
            },
        },
    }
