"""The real-estate registry answers as its documentation says, read with httpx directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from gateway.serving import serve_asgi
from tests.onboarding.holdings import BORN_1880, NOBODY, Holdings
from tests.onboarding.real_estate_service import ManualClock, RealEstateRegistry

SAMPLE = "11010519491231002X"


@pytest.fixture
async def registry() -> AsyncIterator[tuple[RealEstateRegistry, httpx.AsyncClient]]:
    registry = RealEstateRegistry(Holdings.seeded(SAMPLE, "王秀英"))
    async with serve_asgi(registry.app()) as url, httpx.AsyncClient(base_url=url) as client:
        yield registry, client


async def _token(registry: RealEstateRegistry, client: httpx.AsyncClient) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": registry.client_id,
        "client_secret": registry.client_secret,
    }
    answer = await client.post("/oauth/token", data=form)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 2)
    token: str = body["access_token"]
    return token


async def test_the_token_endpoint_takes_client_secret_post_only(
    registry: tuple[RealEstateRegistry, httpx.AsyncClient],
) -> None:
    server, client = registry
    basic = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(server.client_id, server.client_secret)
    )
    wrong = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": server.client_id, "client_secret": "guess"},
    )
    assert (basic.status_code, wrong.status_code) == (401, 401)
    assert wrong.json()["error"] == "invalid_client"
    assert await _token(server, client)
    assert server.tokens_issued == 1


async def test_certificates_come_in_pages_with_decimals_and_times_as_strings(
    registry: tuple[RealEstateRegistry, httpx.AsyncClient],
) -> None:
    server, client = registry
    headers = {"Authorization": f"Bearer {await _token(server, client)}"}
    first = await client.get("/api/certificates", params={"zjhm": SAMPLE, "page": 1, "size": 2}, headers=headers)
    second = await client.get("/api/certificates", params={"zjhm": SAMPLE, "page": 2, "size": 2}, headers=headers)
    assert first.status_code == second.status_code == 200
    one, two = first.json(), second.json()
    assert (one["code"], one["msg"]) == ("0000", "成功")
    assert {k: one["data"][k] for k in ("total", "page", "size")} == {"total": 3, "page": 1, "size": 2}
    assert (two["data"]["page"], len(one["data"]["list"]), len(two["data"]["list"])) == (2, 2, 1)
    records = one["data"]["list"] + two["data"]["list"]
    assert records[0] == {
        "BDCQZH": "京(2015)朝阳区不动产权第0012345号",
        "QLR": "王秀英",
        "ZJHM": SAMPLE,
        "ZL": "北京市朝阳区望京街道花家地北里3号楼2单元501",
        "MJ": "89.50",
        "JYJG": "1250000.00",
        "DJSJ": "2015-06-18 09:30:00",
    }
    assert [Decimal(r["MJ"]) for r in records] == [Decimal("89.50"), Decimal("62.35"), Decimal("13.20")]
    single = (await client.get("/api/certificate", params={"bdcqzh": records[2]["BDCQZH"]}, headers=headers)).json()
    assert single == {"code": "0000", "msg": "成功", "data": records[2]}
    old = (await client.get("/api/certificates", params={"zjhm": BORN_1880}, headers=headers)).json()
    assert old["data"]["list"][0]["DJSJ"] == "1995-03-01 08:00:00"


async def test_nothing_held_and_bad_parameters_are_codes_in_a_200_body(
    registry: tuple[RealEstateRegistry, httpx.AsyncClient],
) -> None:
    server, client = registry
    headers = {"Authorization": f"Bearer {await _token(server, client)}"}
    nothing = await client.get("/api/certificates", params={"zjhm": NOBODY, "page": 1, "size": 2}, headers=headers)
    assert (nothing.status_code, nothing.json()) == (200, {"code": "1004", "msg": "无记录"})
    unknown = await client.get("/api/certificate", params={"bdcqzh": "京(2099)不存在第1号"}, headers=headers)
    assert unknown.json() == {"code": "1004", "msg": "无记录"}
    bad = await client.get("/api/certificates", params={"zjhm": SAMPLE, "size": "many"}, headers=headers)
    assert bad.json() == {"code": "4001", "msg": "参数错误"}


async def test_a_token_expires_after_two_seconds_and_a_fresh_one_is_needed(
    registry: tuple[RealEstateRegistry, httpx.AsyncClient],
) -> None:
    server, client = registry
    assert isinstance(server.clock, ManualClock)
    params: dict[str, str | int] = {"zjhm": SAMPLE, "page": 1, "size": 2}
    missing = await client.get("/api/certificates", params=params)
    assert (missing.status_code, missing.json()) == (200, {"code": "4010", "msg": "令牌无效"})
    token = await _token(server, client)
    fresh = await client.get("/api/certificates", params=params, headers={"Authorization": f"Bearer {token}"})
    assert fresh.json()["code"] == "0000"
    server.clock.advance(1.9)
    assert (await client.get("/api/certificates", params=params, headers={"Authorization": f"Bearer {token}"})).json()[
        "code"
    ] == "0000"
    server.clock.advance(0.2)
    expired = await client.get("/api/certificates", params=params, headers={"Authorization": f"Bearer {token}"})
    assert expired.json() == {"code": "4010", "msg": "令牌无效"}
    renewed = await _token(server, client)
    again = await client.get("/api/certificates", params=params, headers={"Authorization": f"Bearer {renewed}"})
    assert again.json()["data"]["total"] == 3
    assert (server.tokens_issued, server.refused_tokens) == (2, 2)


async def test_the_openapi_document_describes_the_envelope_and_the_record(
    registry: tuple[RealEstateRegistry, httpx.AsyncClient],
) -> None:
    _, client = registry
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    schemas = document["components"]["schemas"]
    answer = document["paths"]["/api/certificates"]["get"]["responses"]["200"]["content"]["application/json"]
    envelope = schemas[answer["schema"]["$ref"].rpartition("/")[2]]
    page = schemas[envelope["properties"]["data"]["$ref"].rpartition("/")[2]]
    record = schemas[page["properties"]["list"]["items"]["$ref"].rpartition("/")[2]]
    assert set(record["properties"]) == {"BDCQZH", "QLR", "ZJHM", "ZL", "MJ", "JYJG", "DJSJ"}
    assert record["properties"]["MJ"] == {"type": "string", "format": "decimal", "description": "面积（平方米）"}
    assert page["properties"]["total"]["type"] == "integer"
    flows = document["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == "/oauth/token"
