"""The housing provident fund centre (住房公积金管理中心): a SOAP 1.1 account service built with spyne.

Its own vocabulary, not the demo's: target namespace ``urn:gjj:account:v1``; an account (``Account``) has GRZH
(account number), XM (name), ZJHM (ID number), ZHYE (balance, ``xs:decimal``), YJCE (monthly deposit,
``xs:decimal``), ZHZT (status: "0" normal, "1" sealed 封存, "9" closed 销户) and KHRQ (opened, ``xs:date``).

* ``QueryAccount(IdCardNo)`` answers ``QueryAccountResponse/Account``, or the fault ``Client.NO_RECORD``;
* ``QueryAccounts(IdCardNos/IdCardNo*)`` answers ``QueryAccountsResponse/Accounts/Account*`` (the ones it holds).

HTTP Basic is required for the WSDL and the endpoint alike (401 and a challenge without it). The service runs in a
child process (:func:`housing_fund_service`): importing spyne leaves its vendored six importer in ``sys.meta_path``
(see :mod:`tests.adapters.soap_peers`). The accounts are handed to the child as JSON on its stdin.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from tests.adapters.soap_peers import SPYNE_SKIP_REASON, spyne_available
from tests.onboarding.holdings import Account

__all__ = [
    "GJJ_NS",
    "NO_RECORD",
    "SPYNE_SKIP_REASON",
    "HousingFundService",
    "housing_fund_service",
    "spyne_available",
]

GJJ_NS = "urn:gjj:account:v1"
NO_RECORD = "Client.NO_RECORD"
REALM = "gjj"


@dataclass(frozen=True)
class HousingFundService:
    """A running service: its WSDL URL and the credentials it accepts."""

    wsdl: str
    username: str
    password: str


def _spyne_app(accounts: dict[str, Account]) -> Any:
    with warnings.catch_warnings():
        # spyne 2.14 trips Python 3.11's import machinery (through its vendored six) and imports ``cgi``.
        warnings.filterwarnings("ignore", message=r"_SixMetaPathImporter\.", category=ImportWarning)
        warnings.filterwarnings("ignore", message=r"'cgi' is deprecated", category=DeprecationWarning)
        from spyne import Application, ComplexModel, Date, Fault, ServiceBase, Unicode, rpc
        from spyne import Decimal as XsDecimal
        from spyne.protocol.soap import Soap11
        from spyne.server.wsgi import WsgiApplication

    class GjjAccount(ComplexModel):  # type: ignore[misc]
        __namespace__ = GJJ_NS
        __type_name__ = "Account"
        GRZH = Unicode(min_occurs=1, doc="个人账号")
        XM = Unicode(min_occurs=1, doc="姓名")
        ZJHM = Unicode(min_occurs=1, doc="证件号码")
        ZHYE = XsDecimal(min_occurs=1, doc="账户余额（元）")
        YJCE = XsDecimal(min_occurs=1, doc="月缴存额（元）")
        ZHZT = Unicode(min_occurs=1, doc="账户状态 0正常 1封存 9销户")
        KHRQ = Date(min_occurs=1, doc="开户日期")

    class IdCardNoList(ComplexModel):  # type: ignore[misc]
        __namespace__ = GJJ_NS
        __type_name__ = "IdCardNoList"
        IdCardNo = Unicode(max_occurs="unbounded")

    class AccountList(ComplexModel):  # type: ignore[misc]
        __namespace__ = GJJ_NS
        __type_name__ = "AccountList"
        Account = GjjAccount.customize(max_occurs="unbounded")

    def as_spyne(account: Account) -> GjjAccount:
        return GjjAccount(
            GRZH=account.account_number,
            XM=account.name,
            ZJHM=account.id_number,
            ZHYE=account.balance,
            YJCE=account.monthly_deposit,
            ZHZT=account.status,
            KHRQ=account.opened,
        )

    class AccountService(ServiceBase):  # type: ignore[misc]
        @rpc(Unicode, _returns=GjjAccount, _out_variable_name="Account")
        def QueryAccount(ctx: Any, IdCardNo: str | None) -> GjjAccount:
            account = accounts.get(IdCardNo or "")
            if account is None:
                raise Fault(NO_RECORD, "无此账户记录")
            return as_spyne(account)

        @rpc(IdCardNoList, _returns=AccountList, _out_variable_name="Accounts")
        def QueryAccounts(ctx: Any, IdCardNos: Any) -> AccountList:
            keys = (IdCardNos.IdCardNo if IdCardNos is not None else None) or []
            return AccountList(Account=[as_spyne(accounts[key]) for key in keys if key in accounts])

    app = Application(
        [AccountService],
        tns=GJJ_NS,
        name="GjjAccountService",
        in_protocol=Soap11(validator="lxml"),
        out_protocol=Soap11(),
    )
    return WsgiApplication(app)


def _basic_auth(app: Callable[..., Any], username: str, password: str) -> Callable[..., Any]:
    """WSGI middleware: every request (WSDL and calls) needs HTTP Basic with these credentials."""
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_AUTHORIZATION") != expected:
            body = "未授权：需要 HTTP Basic 认证".encode()
            start_response(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", f'Basic realm="{REALM}"'),
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        result: Iterable[bytes] = app(environ, start_response)
        return result

    return guarded


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _account_from_json(item: dict[str, Any]) -> Account:
    return Account(
        **item
        | {
            "balance": Decimal(item["balance"]),
            "monthly_deposit": Decimal(item["monthly_deposit"]),
            "opened": dt.date.fromisoformat(item["opened"]),
        }
    )


def _serve() -> None:
    """Read the setup (one JSON line) from stdin, serve until stdin closes; print the WSDL URL first."""
    setup = json.loads(sys.stdin.readline())
    accounts = {item["id_number"]: _account_from_json(item) for item in setup["accounts"]}
    logging.getLogger("spyne").setLevel(logging.CRITICAL)  # a raised Fault is logged with its traceback
    app = _basic_auth(_spyne_app(accounts), setup["username"], setup["password"])
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_port}/gjj/AccountService?wsdl", flush=True)
    sys.stdin.read()
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def housing_fund_service(
    accounts: Iterable[Account], *, username: str = "onewindow", password: str = "gjj-basic-password-2026"
) -> Iterator[HousingFundService]:
    """Run the account service over ``accounts`` in a child process; yield where it is and how to log in."""
    setup = {
        "username": username,
        "password": password,
        "accounts": [asdict(a) for a in accounts],
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.onboarding.housing_fund_service"],
        cwd=Path(__file__).resolve().parents[2],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        child.stdin.write(json.dumps(setup, default=str, ensure_ascii=False) + "\n")
        child.stdin.flush()
        url = child.stdout.readline().strip()
        if not url:
            raise RuntimeError(f"the housing fund service did not start (exit code {child.wait()})")
        yield HousingFundService(url, username, password)
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()


if __name__ == "__main__":
    _serve()
