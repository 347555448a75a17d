"""Answers that carry their status in the body, and records spread over pages, against a real department.

:class:`HousingFund` is a provincial housing-fund centre's REST API on loopback: every answer is HTTP 200 with
``{"code": ..., "msg": ..., "data": ...}``; its deposits come page by page (page numbers, with a total) and its
ledger by cursor. ``mode`` makes it misbehave the ways such systems do.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.rest import RestAdapter
from gateway.config import SourceConfig
from gateway.errors import BadSourceData, ConfigError, SourceCredentialsRefused, SourceFault
from gateway.serving import serve_asgi

SOURCE = "housing_fund"
ZHANG = "11010519491231002X"
NOBODY = "11010519800101001X"
CREDIT_CODE = "91350100M000100Y43"
STATUS = {"path": "code", "message": "msg", "ok": ["0000"], "not_found": ["1004"], "refused": ["4010", "4011"]}


class HousingFund:
    """The department. ``deposits`` has ``records`` entries for ZHANG; ``mode`` picks a misbehaviour."""

    def __init__(self, records: int = 0) -> None:
        self.mode = "normal"
        self.deposits = [{"seq": n, "amount": f"{1000 + n}.50"} for n in range(records)]
        self.hits: Counter[str] = Counter()
        self.pages: list[dict[str, str]] = []

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/accounts/{id}", self.account),
                Route("/accounts/{id}/deposits", self.deposits_page),
                Route("/accounts/{id}/ledger", self.ledger_page),
            ]
        )

    @staticmethod
    def _answer(code: Any, msg: str, data: Any = None) -> Response:
        return JSONResponse({"code": code, "msg": msg, "data": data})

    async def account(self, request: Request) -> Response:
        wanted = request.path_params["id"]
        self.hits["account"] += 1
        if self.mode == "refused":
            return self._answer("4011", "接入凭证已过期")
        if self.mode == "fault":
            detail = f"证件号{wanted}对应单位{CREDIT_CODE}账户余额12345.67异常，" + "请联系管理员" * 40
            return self._answer("9001", detail)
        if self.mode == "no-status":
            return JSONResponse({"data": {"balance": 1}})
        if self.mode == "numeric-ok":
            return JSONResponse({"code": 0, "msg": "ok", "data": {"balance": 1}})
        if wanted != ZHANG:
            return self._answer("1004", f"查无此人{wanted}")
        return self._answer("0000", "成功", {"idNumber": ZHANG, "balance": 12345.67, "status": "正常"})

    async def deposits_page(self, request: Request) -> Response:
        self.hits["deposits"] += 1
        self.pages.append(dict(request.query_params))
        if request.path_params["id"] != ZHANG:
            return self._answer("1004", "查无此人")
        page, size = int(request.query_params["pageNo"]), int(request.query_params["pageSize"])
        records = self.deposits[(page - 1) * size : page * size]
        total = len(self.deposits)
        if self.mode == "lose-records" and page > 1:
            records = []  # the department's paging breaks after the first page
        if self.mode == "ignore-page":
            records = self.deposits[:size]  # the same first page, whatever page is asked for
        return self._answer("0000", "成功", {"total": total, "list": records})

    async def ledger_page(self, request: Request) -> Response:
        self.hits["ledger"] += 1
        self.pages.append(dict(request.query_params))
        start = int(request.query_params.get("after") or 0)
        size = int(request.query_params["limit"])
        records = self.deposits[start : start + size]
        following = start + size if start + size < len(self.deposits) else None
        if self.mode == "cursor-loop":
            following = 0
        return JSONResponse({"entries": records, "paging": {"next": None if following is None else str(following)}})


def _source(url: str, **changes: Any) -> SourceConfig:
    data: dict[str, Any] = {
        "kind": "rest",
        "department": "Provincial Housing Provident Fund Centre",
        "timeout": "5s",
        "base_url": url,
        "status": STATUS,
        "queries": {
            "account": {"path": "/accounts/{key}", "result": "data"},
            "deposits": {
                "path": "/accounts/{key}/deposits",
                "result": "data.list",
                "many": True,
                "paging": {"page": "pageNo", "size": "pageSize", "size_value": 10, "total": "data.total"},
            },
            "ledger": {
                "path": "/accounts/{key}/ledger",
                "result": "entries",
                "many": True,
                "status": None,
                "paging": {"cursor": "paging.next", "cursor_param": "after", "size": "limit", "size_value": 7},
            },
        },
        "provides": {"Person.housingFund": {"query": "account", "fields": {"balance": {"value": "balance"}}}},
    }
    data.update(changes)
    return SourceConfig.model_validate(data)


@pytest.fixture
def fund() -> HousingFund:
    return HousingFund(records=25)


@pytest.fixture
async def fund_url(fund: HousingFund) -> AsyncIterator[str]:
    async with serve_asgi(fund.app()) as url:
        yield url


@pytest.fixture
async def adapter(fund_url: str) -> AsyncIterator[RestAdapter]:
    async with RestAdapter(SOURCE, _source(fund_url)) as opened:
        yield opened


# -- status in the body ------------------------------------------------------------------------------------------


async def test_an_ok_status_reads_the_record_and_a_not_found_status_is_absence(adapter: RestAdapter) -> None:
    assert await adapter.fetch("account", [ZHANG]) == {
        ZHANG: [{"idNumber": ZHANG, "balance": Decimal("12345.67"), "status": "正常"}]
    }
    assert await adapter.fetch("account", [NOBODY]) == {}


@pytest.mark.parametrize("code", ["4010", "4011"])
async def test_a_refused_status_is_refused_credentials_with_the_departments_code(
    fund: HousingFund, fund_url: str, code: str
) -> None:
    fund.mode = "refused"
    status = {**STATUS, "refused": [code]}
    async with RestAdapter(SOURCE, _source(fund_url, status=status)) as adapter:
        with pytest.raises(SourceFault) as info:
            await adapter.fetch("account", [ZHANG])

    if code == "4011":
        assert isinstance(info.value, SourceCredentialsRefused)
        assert info.value.extensions == {
            "code": "SOURCE_CREDENTIALS_REFUSED",
            "source": SOURCE,
            "departmentCode": "4011",
        }
        assert f"check sources.{SOURCE}.credentials" in info.value.reason
    else:
        assert type(info.value) is SourceFault, "4011 is not among this source's refused codes"
    assert "GET /accounts/{key} answered status 4011: 接入凭证已过期" in info.value.reason


async def test_another_status_is_a_fault_whose_message_keeps_no_personal_data(
    fund: HousingFund, adapter: RestAdapter
) -> None:
    fund.mode = "fault"
    with pytest.raises(SourceFault) as info:
        await adapter.fetch("account", [ZHANG])

    error = info.value
    assert type(error) is SourceFault
    assert error.department_code == "9001"
    assert error.extensions["departmentCode"] == "9001"
    assert error.reason.startswith("GET /accounts/{key} answered status 9001: 证件号{key}对应单位***账户余额")
    assert ZHANG not in str(error), "the key is personal data"
    assert CREDIT_CODE not in str(error), "nor an ID number or credit code in the department's message"
    assert len(error.reason) < 300, "the department's long message is cut"


async def test_status_codes_compare_as_text_and_a_missing_status_is_bad_data(fund: HousingFund, fund_url: str) -> None:
    fund.mode = "numeric-ok"
    async with RestAdapter(SOURCE, _source(fund_url, status={**STATUS, "ok": [0]})) as adapter:
        assert await adapter.fetch("account", [ZHANG]) == {ZHANG: [{"balance": 1}]}

        fund.mode = "no-status"
        with pytest.raises(BadSourceData, match="without its status at 'code'"):
            await adapter.fetch("account", [ZHANG])


async def test_a_query_may_set_its_own_status_or_none(fund: HousingFund, fund_url: str) -> None:
    queries = {
        "account": {"path": "/accounts/{key}", "result": "data", "status": {"path": "code", "ok": ["1004"]}},
        "plain": {"path": "/accounts/{key}", "result": "data", "status": None},
    }
    async with RestAdapter(SOURCE, _source(fund_url, queries=queries)) as adapter:
        assert await adapter.fetch("account", [NOBODY]) == {}, "1004 is ok here; its data is null"
        with pytest.raises(SourceFault) as info:
            await adapter.fetch("account", [ZHANG])
        assert info.value.department_code == "0000"
        assert "answered status 0000" in info.value.reason, "without message, the code alone"

        fund.mode = "refused"
        assert await adapter.fetch("plain", [ZHANG]) == {}, "no status: the body is read as it is"


def test_a_code_in_two_groups_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        RestAdapter(SOURCE, _source("http://127.0.0.1:9", status={**STATUS, "not_found": ["1004", "4010"]}))
    assert info.value.path == f"sources.{SOURCE}.status"
    assert "'4010' is in both not_found and refused" in info.value.reason


# -- paging ------------------------------------------------------------------------------------------------------


async def test_page_numbers_are_followed_until_the_total(fund: HousingFund, adapter: RestAdapter) -> None:
    records = (await adapter.fetch("deposits", [ZHANG]))[ZHANG]

    assert [record["seq"] for record in records] == list(range(25))
    assert fund.pages == [{"pageNo": str(n), "pageSize": "10"} for n in (1, 2, 3)]
    assert await adapter.fetch("deposits", [NOBODY]) == {}


async def test_cursors_are_followed_until_the_last_page(fund: HousingFund, adapter: RestAdapter) -> None:
    records = (await adapter.fetch("ledger", [ZHANG]))[ZHANG]

    assert [record["seq"] for record in records] == list(range(25))
    assert fund.pages == [{"limit": "7"}, *({"after": str(n), "limit": "7"} for n in (7, 14, 21))]


async def test_pages_ending_before_the_total_are_bad_data(fund: HousingFund, adapter: RestAdapter) -> None:
    fund.mode = "lose-records"
    with pytest.raises(BadSourceData) as info:
        await adapter.fetch("deposits", [ZHANG])

    assert info.value.reason == "query 'deposits': pages ended after 10 of the 25 records the department reports"
    assert ZHANG not in str(info.value)


async def test_more_records_than_max_records_are_bad_data_not_a_silent_cut(fund: HousingFund, fund_url: str) -> None:
    deposits = {
        "path": "/accounts/{key}/deposits",
        "result": "data.list",
        "many": True,
        "paging": {"page": "pageNo", "size": "pageSize", "size_value": 10, "total": "data.total", "max_records": 20},
    }
    ledger = {
        "path": "/accounts/{key}/ledger",
        "result": "entries",
        "many": True,
        "paging": {"cursor": "paging.next", "cursor_param": "after", "size": "limit", "max_records": 20},
    }
    queries = {"deposits": deposits, "ledger": ledger, "account": {"path": "/accounts/{key}", "result": "data"}}
    async with RestAdapter(SOURCE, _source(fund_url, queries=queries, status=None)) as adapter:
        with pytest.raises(BadSourceData) as reported:
            await adapter.fetch("deposits", [ZHANG])
        assert fund.hits["deposits"] == 1, "the total says so on the first page"
        with pytest.raises(BadSourceData) as read:
            await adapter.fetch("ledger", [ZHANG])

    assert "query 'deposits': the department reports 25 records, more than paging.max_records (20)" in (
        reported.value.reason
    )
    assert "query 'ledger': more than paging.max_records (20) records after 1 pages" in read.value.reason


async def test_a_department_ignoring_the_page_or_repeating_a_cursor_is_bad_data(
    fund: HousingFund, adapter: RestAdapter
) -> None:
    fund.mode = "ignore-page"
    with pytest.raises(BadSourceData, match="the pages held 30 records, the department reports 25"):
        await adapter.fetch("deposits", [ZHANG])

    fund.mode = "cursor-loop"
    with pytest.raises(BadSourceData, match="sent a cursor a second time"):
        await adapter.fetch("ledger", [ZHANG])


@pytest.mark.parametrize(
    ("paging", "many", "said"),
    [
        ({"page": "p", "cursor": "next", "cursor_param": "c"}, True, "set page (page numbers) or cursor"),
        ({"cursor": "next"}, True, "cursor needs cursor_param"),
        ({"page": "p"}, False, "set many: true"),
        ({"page": "p", "max_records": 0}, True, "greater than or equal to 1"),
    ],
)
def test_paging_mistakes_are_named_before_anything_is_opened(paging: dict[str, Any], many: bool, said: str) -> None:
    queries = {"deposits": {"path": "/d/{key}", "many": many, "paging": paging}}
    with pytest.raises(ConfigError) as info:
        RestAdapter(SOURCE, _source("http://127.0.0.1:9", queries=queries))
    assert info.value.path.startswith(f"sources.{SOURCE}.queries.deposits")
    assert said in info.value.reason


async def test_a_post_querys_page_fields_go_in_its_json_body() -> None:
    seen: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        seen.append(sent)
        records = [{"seq": n} for n in range(25)][(sent["page"] - 1) * 10 : sent["page"] * 10]
        return httpx.Response(200, json={"rows": records}, request=request)

    query = {
        "path": "/deposits:search",
        "method": "POST",
        "body": {"idNumber": "{key}"},
        "result": "rows",
        "many": True,
        "paging": {"page": "page", "size": "rows", "size_value": 10},
    }
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    config = _source("https://gjj.example.gov.cn", status=None, queries={"deposits": query})
    async with client, RestAdapter(SOURCE, config, client=client) as adapter:
        records = (await adapter.fetch("deposits", [ZHANG]))[ZHANG]

    assert len(records) == 25
    assert seen == [{"idNumber": ZHANG, "page": n, "rows": 10} for n in (1, 2, 3)], "a short third page is the last"
