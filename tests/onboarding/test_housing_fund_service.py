"""The housing fund service answers as a spyne SOAP 1.1 service should, read with zeep directly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.helpers import serialize_object
from zeep.transports import Transport

from tests.onboarding.holdings import BORN_1880, NOBODY, SEALED, Holdings
from tests.onboarding.housing_fund_service import (
    GJJ_NS,
    NO_RECORD,
    SPYNE_SKIP_REASON,
    HousingFundService,
    housing_fund_service,
    spyne_available,
)

pytestmark = pytest.mark.skipif(not spyne_available(), reason=SPYNE_SKIP_REASON)

SAMPLE = "11010519491231002X"
HOLDINGS = Holdings.seeded(SAMPLE, "王秀英")


def _values(answer: Any) -> dict[str, Any]:
    values: dict[str, Any] = serialize_object(answer, dict)  # type: ignore[no-untyped-call]
    return values


@pytest.fixture(scope="module")
def service() -> Iterator[HousingFundService]:
    with housing_fund_service(HOLDINGS.accounts.values()) as running:
        yield running


@pytest.fixture(scope="module")
def client(service: HousingFundService) -> Iterator[zeep.Client]:
    session = requests.Session()
    session.auth = (service.username, service.password)
    with session:
        yield zeep.Client(service.wsdl, transport=Transport(session=session))  # type: ignore[no-untyped-call]


def test_wsdl_and_endpoint_both_require_basic_auth(service: HousingFundService) -> None:
    endpoint = service.wsdl.partition("?")[0]
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:g="urn:gjj:account:v1">'
        f"<soapenv:Body><g:QueryAccount><g:IdCardNo>{SAMPLE}</g:IdCardNo></g:QueryAccount></soapenv:Body>"
        "</soapenv:Envelope>"
    )
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "QueryAccount"}
    for auth in (None, (service.username, "wrong")):
        wsdl = httpx.get(service.wsdl, auth=auth)
        call = httpx.post(endpoint, content=envelope, headers=headers, auth=auth)
        assert (wsdl.status_code, call.status_code) == (401, 401)
        assert wsdl.headers["www-authenticate"].startswith("Basic ")
        assert SAMPLE not in call.text
    answer = httpx.post(endpoint, content=envelope, headers=headers, auth=(service.username, service.password))
    assert answer.status_code == 200
    assert etree.fromstring(answer.content).findtext(f".//{{{GJJ_NS}}}ZHYE") == "86532.17"


def test_the_wsdl_is_its_own_urn_namespace_with_decimal_money(service: HousingFundService) -> None:
    wsdl = etree.fromstring(httpx.get(service.wsdl, auth=(service.username, service.password)).content)
    assert wsdl.get("targetNamespace") == "urn:gjj:account:v1"
    xs = "{http://www.w3.org/2001/XMLSchema}"
    account = wsdl.find(f".//{xs}complexType[@name='Account']")
    assert account is not None
    types = {e.get("name"): e.get("type") for e in account.iter(f"{xs}element")}
    assert types == {
        "GRZH": "xs:string",
        "XM": "xs:string",
        "ZJHM": "xs:string",
        "ZHYE": "xs:decimal",
        "YJCE": "xs:decimal",
        "ZHZT": "xs:string",
        "KHRQ": "xs:date",
    }
    operations = {o.get("name") for o in wsdl.iter("{http://schemas.xmlsoap.org/wsdl/}operation")}
    assert operations == {"QueryAccount", "QueryAccounts"}


def test_query_account_answers_the_account_with_exact_decimals(client: zeep.Client) -> None:
    account = _values(client.service.QueryAccount(IdCardNo=SAMPLE))
    assert account == {
        "GRZH": "110100987654",
        "XM": "王秀英",
        "ZJHM": SAMPLE,
        "ZHYE": Decimal("86532.17"),
        "YJCE": Decimal("2150.00"),
        "ZHZT": "0",
        "KHRQ": dt.date(2003, 7, 1),
    }
    sealed = _values(client.service.QueryAccount(IdCardNo=SEALED))
    assert (sealed["ZHZT"], sealed["ZHYE"]) == ("1", Decimal("123456.78"))
    closed = _values(client.service.QueryAccount(IdCardNo=BORN_1880))
    assert (closed["XM"], closed["ZHZT"], closed["ZHYE"]) == ("周树人", "9", Decimal("0.00"))


def test_an_unknown_id_number_is_the_no_record_fault(client: zeep.Client) -> None:
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.QueryAccount(IdCardNo=NOBODY)
    assert caught.value.code is not None
    assert caught.value.code.endswith(NO_RECORD)
    assert caught.value.message == "无此账户记录"


def test_query_accounts_answers_the_ones_it_holds(service: HousingFundService, client: zeep.Client) -> None:
    answer = client.service.QueryAccounts(IdCardNos={"IdCardNo": [SAMPLE, NOBODY, BORN_1880, SEALED]})
    assert [(a.ZJHM, a.ZHYE) for a in answer] == [
        (SAMPLE, Decimal("86532.17")),
        (BORN_1880, Decimal("0.00")),
        (SEALED, Decimal("123456.78")),
    ]
    assert not client.service.QueryAccounts(IdCardNos={"IdCardNo": [NOBODY]})
    # On the wire: QueryAccountsResponse/Accounts/Account, one per account held.
    envelope = (
        '<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:g="urn:gjj:account:v1"><e:Body>'
        f"<g:QueryAccounts><g:IdCardNos><g:IdCardNo>{SAMPLE}</g:IdCardNo><g:IdCardNo>{SEALED}</g:IdCardNo>"
        "</g:IdCardNos></g:QueryAccounts></e:Body></e:Envelope>"
    )
    raw = httpx.post(
        service.wsdl.partition("?")[0],
        content=envelope,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "QueryAccounts"},
        auth=(service.username, service.password),
    )
    g = f"{{{GJJ_NS}}}"
    found = etree.fromstring(raw.content).findall(f".//{g}QueryAccountsResponse/{g}Accounts/{g}Account/{g}ZJHM")
    assert [e.text for e in found] == [SAMPLE, SEALED]
