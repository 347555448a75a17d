"""Record shapes from a department's OpenAPI document (``RestAdapter.describe``), served by a real Starlette app.

The document is a housing-fund centre's: answers wrapped in a ``{code, msg, data}`` envelope, schemas behind
``$ref`` s, an account that lists its own sub-accounts (a schema containing itself), dates, money and lists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.base import FieldShape
from adapters.rest import RestAdapter
from gateway.config import SourceConfig
from gateway.errors import ConfigError
from gateway.serving import serve_asgi

SOURCE = "housing_fund"


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": "answered",
        "content": {
            "application/json;charset=UTF-8": {
                "schema": {
                    "type": "object",
                    "properties": {"code": {"type": "string"}, "msg": {"type": "string"}, "data": data},
                }
            }
        },
    }


DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Housing provident fund", "version": "2.1"},
    "paths": {
        "/accounts/{id}": {
            "get": {"responses": {"200": _envelope({"$ref": "#/components/schemas/Account"})}},
        },
        "/accounts/{id}/deposits": {
            "get": {
                "responses": {
                    "200": _envelope(
                        {
                            "type": "object",
                            "properties": {
                                "total": {"type": "integer"},
                                "list": {"type": "array", "items": {"$ref": "#/components/schemas/Deposit"}},
                            },
                        }
                    )
                }
            }
        },
        "/accounts/{id}/notes": {"get": {"responses": {"200": {"description": "free text"}}}},
    },
    "components": {
        "schemas": {
            "Account": {
                "type": "object",
                "properties": {
                    "GJJZH": {"type": "string", "description": "account number"},
                    "YE": {"type": "number", "description": "balance"},
                    "KHRQ": {"type": "string", "format": "date"},
                    "GXSJ": {"type": "string", "format": "date-time"},
                    "JCJS": {"type": "string", "format": "decimal"},
                    "YJCYS": {"type": "integer"},
                    "SFZC": {"type": "boolean"},
                    "DW": {"$ref": "#/components/schemas/Employer"},
                    "ZZH": {"type": "array", "items": {"$ref": "#/components/schemas/Account"}},
                    "BQ": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Employer": {
                "allOf": [
                    {"$ref": "#/components/schemas/Named"},
                    {"type": "object", "properties": {"TYSHXYDM": {"type": "string"}}},
                ]
            },
            "Named": {"type": "object", "properties": {"MC": {"type": "string"}}},
            "Deposit": {
                "type": "object",
                "properties": {"JE": {"type": "number"}, "RQ": {"type": "string", "format": "date"}},
            },
        }
    },
}


async def _openapi(request: Request) -> Response:
    return JSONResponse(DOCUMENT)


@pytest.fixture
async def department_url() -> AsyncIterator[str]:
    async with serve_asgi(Starlette(routes=[Route("/openapi.json", _openapi)])) as url:
        yield url


def _source(url: str, **changes: Any) -> SourceConfig:
    data: dict[str, Any] = {
        "kind": "rest",
        "department": "Provincial Housing Provident Fund Centre",
        "base_url": url,
        "openapi": "/openapi.json",
        "status": {"path": "code", "message": "msg", "ok": ["0000"]},
        "queries": {
            "account": {"path": "/accounts/{key}", "result": "data"},
            "deposits": {
                "path": "/accounts/{key}/deposits",
                "result": "data.list",
                "many": True,
                "paging": {"page": "pageNo", "total": "data.total"},
            },
            "notes": {"path": "/accounts/{key}/notes"},
        },
        "provides": {"Person.housingFund": {"query": "account", "fields": {"balance": {"value": "YE"}}}},
    }
    data.update(changes)
    return SourceConfig.model_validate(data)


async def test_a_record_is_described_from_the_envelopes_data(department_url: str) -> None:
    async with RestAdapter(SOURCE, _source(department_url)) as adapter:
        shape = await adapter.describe("account")

    assert shape is not None
    assert {name: (field.type, field.many) for name, field in shape.items()} == {
        "GJJZH": ("String", False),
        "YE": ("Decimal", False),
        "KHRQ": ("Date", False),
        "GXSJ": ("DateTime", False),
        "JCJS": ("Decimal", False),
        "YJCYS": ("Int", False),
        "SFZC": ("Boolean", False),
        "DW": ("Object", False),
        "ZZH": ("Object", True),
        "BQ": ("String", True),
    }
    assert shape["YE"].description == "balance"
    assert shape["DW"].fields == {"MC": FieldShape("String"), "TYSHXYDM": FieldShape("String")}, "allOf merged"
    assert shape["ZZH"] == FieldShape("Object", many=True, fields={}, description="Account, not expanded again"), (
        "a schema containing itself stops"
    )


async def test_a_many_query_is_described_by_its_lists_items(department_url: str) -> None:
    async with RestAdapter(SOURCE, _source(department_url)) as adapter:
        assert await adapter.describe("deposits") == {"JE": FieldShape("Decimal"), "RQ": FieldShape("Date")}


async def test_nothing_described_is_none(department_url: str) -> None:
    async with RestAdapter(SOURCE, _source(department_url)) as adapter:
        assert await adapter.describe("notes") is None, "an answer without a JSON schema"
    async with RestAdapter(SOURCE, _source(department_url, openapi=None)) as adapter:
        assert await adapter.describe("account") is None, "no OpenAPI document"


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"path": "/accounts/{key}", "result": "data.account"}, "has no 'account' at data (it has: GJJZH, YE, KHRQ"),
        ({"path": "/accounts/{key}", "result": "data", "many": True}, "the answer at data is not a list"),
    ],
)
async def test_a_result_path_the_schema_lacks_is_a_config_error(
    department_url: str, query: dict[str, Any], said: str
) -> None:
    async with RestAdapter(SOURCE, _source(department_url, queries={"account": query})) as adapter:
        with pytest.raises(ConfigError) as info:
            await adapter.describe("account")

    assert info.value.path == f"sources.{SOURCE}.queries.account.result"
    assert "GET /accounts/{key} in the OpenAPI document" in info.value.reason
    assert said in info.value.reason
