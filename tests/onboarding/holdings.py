"""What the three test departments hold: a handful of persons with valid ID numbers (one born in 1880), plus the
demo's sample person, whose purpose case lets a demo clerk read them through the gateway.

    holdings = Holdings.seeded(SAMPLE_PERSON_ID, "王秀英")
    holdings.accounts[SAMPLE_PERSON_ID].balance      # Decimal('86532.17')
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.keys import id_number_check_char

__all__ = [
    "BORN_1880",
    "NOBODY",
    "SEALED",
    "WITHDRAWN_ONLY",
    "Account",
    "Allowance",
    "Certificate",
    "Holdings",
    "id_number",
]


def id_number(first17: str) -> str:
    """A valid 18-character ID number from its first 17 characters."""
    return first17 + id_number_check_char(first17)


BORN_1880 = id_number("11010218800229001")  # 1880 was a leap year
SEALED = id_number("32010619870712003")
WITHDRAWN_ONLY = id_number("44010419920305004")
NOBODY = id_number("51010719700707007")  # held by none of the three


@dataclass(frozen=True)
class Account:
    """A housing provident fund account. ``status``: "0" normal, "1" sealed (封存), "9" closed (销户)."""

    account_number: str
    name: str
    id_number: str
    balance: Decimal
    monthly_deposit: Decimal
    status: str
    opened: dt.date


@dataclass(frozen=True)
class Certificate:
    """A real-estate title certificate (不动产权证书); ``area`` in m², ``price`` in yuan."""

    number: str
    holder: str
    id_number: str
    address: str
    area: Decimal
    price: Decimal
    registered_at: dt.datetime


@dataclass(frozen=True)
class Allowance:
    """A row of the minimum living allowance table; ``status`` "1" paid, "9" withdrawn (撤销)."""

    id_number: str
    name: str
    amount: Decimal
    starts: dt.date
    status: str


@dataclass(frozen=True)
class Holdings:
    accounts: dict[str, Account] = field(default_factory=dict)
    certificates: list[Certificate] = field(default_factory=list)
    allowances: list[Allowance] = field(default_factory=list)

    def certificates_of(self, id_number: str) -> list[Certificate]:
        """A holder's certificates in the registry's order (by registration time)."""
        return sorted((c for c in self.certificates if c.id_number == id_number), key=lambda c: c.registered_at)

    def certificate(self, number: str) -> Certificate | None:
        return next((c for c in self.certificates if c.number == number), None)

    def active_allowance(self, id_number: str) -> Allowance | None:
        return next((a for a in self.allowances if a.id_number == id_number and a.status != "9"), None)

    @classmethod
    def seeded(cls, sample_id: str, sample_name: str) -> Holdings:
        """The fixed data set, with the demo's sample person (``sample_id``) holding something in each system."""
        own = {
            BORN_1880: "周树人",
            SEALED: "陈晓明",
            WITHDRAWN_ONLY: "林美玲",
            sample_id: sample_name,
        }
        accounts = [
            Account(
                "110100987654",
                own[sample_id],
                sample_id,
                Decimal("86532.17"),
                Decimal("2150.00"),
                "0",
                dt.date(2003, 7, 1),
            ),
            Account(
                "110100000019", own[BORN_1880], BORN_1880, Decimal("0.00"), Decimal("0.00"), "9", dt.date(1992, 1, 15)
            ),
            Account(
                "320100554433", own[SEALED], SEALED, Decimal("123456.78"), Decimal("3600.50"), "1", dt.date(2010, 9, 1)
            ),
            Account(
                "440100112233",
                own[WITHDRAWN_ONLY],
                WITHDRAWN_ONLY,
                Decimal("0.05"),
                Decimal("980.00"),
                "0",
                dt.date(2021, 3, 8),
            ),
        ]
        certificates = [
            Certificate(
                "京(2015)朝阳区不动产权第0012345号",
                own[sample_id],
                sample_id,
                "北京市朝阳区望京街道花家地北里3号楼2单元501",
                Decimal("89.50"),
                Decimal("1250000.00"),
                dt.datetime(2015, 6, 18, 9, 30, 0),
            ),
            Certificate(
                "京(2018)海淀区不动产权第0203040号",
                own[sample_id],
                sample_id,
                "北京市海淀区学院路街道志新村12号楼301",
                Decimal("62.35"),
                Decimal("3180000.00"),
                dt.datetime(2018, 11, 2, 14, 5, 12),
            ),
            Certificate(
                "京(2023)通州区不动产权第0000777号",
                own[sample_id],
                sample_id,
                "北京市通州区永顺镇车库C-118",
                Decimal("13.20"),
                Decimal("200000.00"),
                dt.datetime(2023, 1, 9, 16, 45, 0),
            ),
            Certificate(
                "京(1995)西城区房字第0000001号",
                own[BORN_1880],
                BORN_1880,
                "北京市西城区新街口街道八道湾胡同11号",
                Decimal("412.08"),
                Decimal("0.00"),
                dt.datetime(1995, 3, 1, 8, 0, 0),
            ),
            Certificate(
                "苏(2012)南京市不动产权第0456789号",
                own[SEALED],
                SEALED,
                "江苏省南京市鼓楼区中山北路88号1802",
                Decimal("120.00"),
                Decimal("2760000.50"),
                dt.datetime(2012, 5, 20, 10, 0, 0),
            ),
        ]
        allowances = [
            Allowance(sample_id, own[sample_id], Decimal("1320.00"), dt.date(2019, 1, 1), "9"),
            Allowance(sample_id, own[sample_id], Decimal("1450.50"), dt.date(2023, 1, 1), "1"),
            Allowance(BORN_1880, own[BORN_1880], Decimal("980.00"), dt.date(2020, 7, 1), "1"),
            Allowance(WITHDRAWN_ONLY, own[WITHDRAWN_ONLY], Decimal("1100.00"), dt.date(2022, 4, 1), "9"),
        ]
        return cls({a.id_number: a for a in accounts}, certificates, allowances)
