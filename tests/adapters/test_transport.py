"""adapters/transport.py: a plain call skips httpx's client machinery and comes back exactly as httpx's path would
answer it -- same request on the wire, same response, same exceptions -- and every call that needs the machinery
still goes through it. Against a real department on loopback (uvicorn)."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from adapters.transport import DepartmentClient, department_client, timed_out
from tests.adapters.secured_servers import serve
from tests.conftest import unused_port


async def echo(request: Request) -> Response:
    body = await request.body()
    answer = {
        "method": request.method,
        "path": request.url.path,
        "query": request.url.query,
        "headers": {k: v for k, v in request.headers.items() if k not in ("user-agent",)},
        "body": body.decode(),
    }
    return JSONResponse(
        answer,
        status_code=int(request.query_params.get("status", "200")) if request.url.query else 200,
        headers={"X-Department": "hrss"},
    )


async def zipped(request: Request) -> Response:
    return Response(
        gzip.compress(b'{"insured": true}'), headers={"Content-Encoding": "gzip"}, media_type="application/json"
    )


async def cookie(request: Request) -> Response:
    response = JSONResponse({"seen": request.cookies.get("session")})
    response.set_cookie("session", "s-1")
    return response


async def slow(request: Request) -> Response:
    await asyncio.sleep(2)
    return JSONResponse({})


async def moved(request: Request) -> Response:
    return RedirectResponse("/echo/moved", status_code=302)


APP = Starlette(
    routes=[
        Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT"]),
        Route("/zipped", zipped),
        Route("/cookie", cookie),
        Route("/slow", slow),
        Route("/moved", moved),
    ]
)


@pytest.fixture
async def base() -> AsyncIterator[str]:
    async with serve(APP) as url:
        yield url


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    http = department_client(verify=False, timeout=httpx.Timeout(5.0), max_connections=4)
    async with http:
        yield http


class Counted(DepartmentClient):
    """Counts the calls that took httpx's path."""

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        self.through_httpx = getattr(self, "through_httpx", 0) + 1
        return await super().send(request, **kwargs)


def counted(**options: Any) -> Counted:
    from httpx_aiohttp import AiohttpTransport

    transport = AiohttpTransport(verify=False, limits=httpx.Limits(max_connections=4))
    return Counted(timeout=httpx.Timeout(5.0), transport=transport, **options)


async def both(base: str, method: str, path: str, **options: Any) -> tuple[httpx.Response, httpx.Response]:
    """The same call, once direct and once through httpx's own path, on one client."""
    async with counted() as http:
        direct = await http.request(method, base + path, **options)
        assert getattr(http, "through_httpx", 0) == 0
        through = await httpx.AsyncClient.request(http, method, base + path, **options)
        assert http.through_httpx == 1
    return direct, through


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("GET", {"headers": {"Accept": "application/json", "X-Trace": "t-1"}}),
        ("POST", {"content": b"<soap:Envelope/>", "headers": {"Content-Type": "text/xml; charset=utf-8"}}),
        ("POST", {"json": {"idNumbers": ["11010519491231002X"], "名": "张三", "n": 1.5}}),
        ("PUT", {}),
    ],
)
async def test_a_plain_call_sends_and_answers_what_httpx_would(base: str, method: str, options: dict[str, Any]) -> None:
    direct, through = await both(base, method, "/echo/insured/1", **options)
    assert direct.status_code == through.status_code == 200
    assert direct.json() == through.json()
    sent = direct.json()
    assert sent["method"] == method
    assert sent["path"] == "/echo/insured/1"
    assert direct.headers["x-department"] == through.headers["x-department"] == "hrss"
    assert direct.reason_phrase == through.reason_phrase == "OK"
    assert direct.http_version == "HTTP/1.1"
    # what was sent, as httpx would record it
    assert direct.request.method == method
    assert str(direct.request.url) == str(through.request.url)
    assert direct.request.content == through.request.content
    for name in ("content-type", "accept", "x-trace"):
        assert direct.request.headers.get(name) == through.request.headers.get(name)


async def test_a_status_other_than_200_is_answered_as_is(base: str) -> None:
    async with counted() as http:
        # query parameters need httpx's merge: that call goes through httpx
        response = await http.get(base + "/echo/x", params={"status": "503"})
        assert response.status_code == 503
        assert response.reason_phrase == "Service Unavailable"
        assert http.through_httpx == 1


async def test_a_compressed_answer_is_decompressed(base: str, client: httpx.AsyncClient) -> None:
    response = await client.get(base + "/zipped")
    assert response.json() == {"insured": True}


@pytest.mark.parametrize("path", ["/echo/plain", "/zipped"])
async def test_a_direct_answer_is_read_as_httpx_reads_it(base: str, path: str) -> None:
    direct, through = await both(base, "GET", path)
    assert direct.content == through.content
    assert direct.text == through.text
    assert direct.num_bytes_downloaded == through.num_bytes_downloaded > 0
    assert direct.is_stream_consumed is through.is_stream_consumed is True
    assert direct.is_closed is through.is_closed is True
    same = ("content-length", "content-encoding", "content-type")
    assert {k: direct.headers.get(k) for k in same} == {k: through.headers.get(k) for k in same}
    with pytest.raises(httpx.StreamConsumed):
        next(direct.iter_raw())


async def test_cookies_a_department_sets_are_kept_and_sent_back_through_httpx(base: str) -> None:
    async with counted() as http:
        first = await http.get(base + "/cookie")
        assert first.json() == {"seen": None}
        assert http.cookies.get("session") == "s-1"
        second = await http.get(base + "/cookie")  # a cookie to send: httpx's path
        assert second.json() == {"seen": "s-1"}
        assert http.through_httpx == 1


async def test_auth_hooks_and_redirects_take_httpx_path(base: str) -> None:
    async with counted(auth=httpx.BasicAuth("gw", "pw")) as http:
        answer = await http.get(base + "/echo/a")
        assert answer.json()["headers"]["authorization"].startswith("Basic ")
        assert http.through_httpx == 1
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async with counted(event_hooks={"request": [hook]}) as http:
        await http.get(base + "/echo/b")
        assert seen == ["/echo/b"]
        assert http.through_httpx == 1
    async with counted() as http:
        followed = await http.get(base + "/moved", follow_redirects=True)
        assert followed.json()["path"] == "/echo/moved"
        assert http.through_httpx == 1
        unfollowed = await http.get(base + "/moved")
        assert unfollowed.status_code == 302
        assert http.through_httpx == 1


async def test_a_slow_department_times_out_as_a_timeout(base: str) -> None:
    async with department_client(verify=False, timeout=httpx.Timeout(0.3), max_connections=2) as http:
        with pytest.raises(httpx.TimeoutException) as caught:
            await http.get(base + "/slow")
    assert timed_out(caught.value)


async def test_a_refused_connection_is_unreachable_not_slow(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.TransportError) as caught:
        await client.get(f"http://127.0.0.1:{unused_port()}/insured/1")
    assert not isinstance(caught.value, httpx.TimeoutException) or not timed_out(caught.value)


async def test_many_concurrent_calls_share_the_pool(base: str, client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(*(client.get(f"{base}/echo/{i}") for i in range(40)))
    assert [json.loads(a.content)["path"] for a in answers] == [f"/echo/{i}" for i in range(40)]
