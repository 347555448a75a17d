"""Electronic licences for the demo dataset: what a person or an entity holds, with consistent validity."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from demo.model import Licence, Marriage
from demo.reference import Region

__all__ = ["entity_licences", "licence_status", "person_licences"]


def licence_status(rng: random.Random, today: dt.date, valid_until: dt.date | None) -> str:
    """EXPIRED past its validity; otherwise mostly VALID, now and then suspended or revoked."""
    if valid_until is not None and valid_until < today:
        return "EXPIRED"
    roll = rng.random()
    return "SUSPENDED" if roll < 0.03 else "REVOKED" if roll < 0.05 else "VALID"


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(count))


def _identity_card(
    rng: random.Random, today: dt.date, holder: tuple[str, str], region: Region, birth: dt.date
) -> Licence:
    issued = today - dt.timedelta(days=rng.randint(30, 20 * 365))
    age = issued.year - birth.year
    years = 5 if age < 16 else 10 if age < 26 else 20 if age < 46 else None
    valid_until = None if years is None else _add_years(issued, years)
    issuer = f"{region.city}公安局{region.district.removesuffix('区').removesuffix('新')}分局"
    return Licence(
        "居民身份证",
        holder[0],
        holder[1],
        holder[0],
        issuer,
        issued,
        valid_until,
        licence_status(rng, today, valid_until),
    )


def person_licences(
    rng: random.Random,
    today: dt.date,
    id_number: str,
    name: str,
    region: Region,
    birth: dt.date,
    marriage: Marriage,
    *,
    sample: bool = False,
) -> tuple[Licence, ...]:
    """居民身份证, 机动车驾驶证, 职业资格证书, 结婚证, 老年人优待证 as the person's life suggests."""
    holder = (id_number, name)
    held: list[Licence] = []
    if sample or rng.random() < 0.75:
        held.append(_identity_card(rng, today, holder, region, birth))
    age = today.year - birth.year
    if not sample and 18 <= age <= 70 and rng.random() < 0.5:
        issued = today - dt.timedelta(days=rng.randint(30, 12 * 365))
        valid_until = _add_years(issued, rng.choice((6, 10)))
        held.append(
            Licence(
                "机动车驾驶证",
                id_number,
                name,
                id_number,
                f"{region.city}公安局交通管理局",
                issued,
                valid_until,
                licence_status(rng, today, valid_until),
            )
        )
    if not sample and rng.random() < 0.15:
        issued = today - dt.timedelta(days=rng.randint(30, 15 * 365))
        held.append(
            Licence(
                "职业资格证书",
                f"{issued.year}{_digits(rng, 12)}",
                name,
                id_number,
                f"{region.city}人力资源和社会保障局",
                issued,
                None,
                licence_status(rng, today, None),
            )
        )
    if marriage.status == "MARRIED" and marriage.registered_on and marriage.registry and rng.random() < 0.6:
        held.append(
            Licence(
                "结婚证",
                f"J{region.code}-{marriage.registered_on.year}-{_digits(rng, 6)}",
                name,
                id_number,
                marriage.registry,
                marriage.registered_on,
                None,
                "VALID",
            )
        )
    if sample or (age >= 60 and rng.random() < 0.3):
        issued = today - dt.timedelta(days=rng.randint(30, 5 * 365))
        held.append(
            Licence(
                "老年人优待证",
                f"LN{region.code}{_digits(rng, 8)}",
                name,
                id_number,
                f"{region.city}{region.district}民政局",
                issued,
                None,
                "VALID",
            )
        )
    if sample:  # the sample person's licences are all in force, whatever the draw
        return tuple(dataclasses.replace(licence, status="VALID") for licence in held)
    return tuple(held)


def entity_licences(
    rng: random.Random,
    today: dt.date,
    credit_code: str,
    name: str,
    region: Region,
    established: dt.date,
    status: str,
    industry: str,
) -> tuple[Licence, ...]:
    """营业执照 for every entity, and the permits its industry needs."""
    market = f"{region.city}{region.district}市场监督管理局"
    licence_state = "REVOKED" if status in ("REVOKED", "CANCELLED") else "VALID"
    held = [Licence("营业执照", credit_code, name, credit_code, market, established, None, licence_state)]

    def permit(kind: str, number: str, issuer: str, years: int) -> None:
        issued = max(established, today - dt.timedelta(days=rng.randint(30, 8 * 365)))
        valid_until = _add_years(issued, years)
        state = "REVOKED" if licence_state == "REVOKED" else licence_status(rng, today, valid_until)
        held.append(Licence(kind, number, name, credit_code, issuer, issued, valid_until, state))

    if industry in ("餐饮管理", "食品") or rng.random() < 0.1:
        permit("食品经营许可证", f"JY1{region.code}{_digits(rng, 7)}", market, 5)
    if industry in ("环保科技", "建筑工程") and rng.random() < 0.6:
        permit("排污许可证", f"{credit_code}001P", f"{region.city}生态环境局", 5)
    if industry == "建筑工程":
        permit("建筑业企业资质证书", f"D{_digits(rng, 9)}", f"{region.city}住房和城乡建设委员会", 5)
    if industry == "医药":
        permit("药品经营许可证", f"YP{region.code}{_digits(rng, 6)}", f"{region.city}药品监督管理局", 5)
    return tuple(held)
