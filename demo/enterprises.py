"""Legal entities for the demo dataset, with valid unified social credit codes (GB 32100)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Sequence
from decimal import Decimal

from demo.licensing import entity_licences
from demo.model import SAMPLE_ENTITY_CODE, SAMPLE_PERSON_ID, LegalEntity, Person
from demo.reference import REGIONS, TRADE_NAMES, Region
from gateway.keys import CREDIT_CODE_ALPHABET, credit_code_check_char

__all__ = ["ENTITY_COUNT", "generate_entities"]

ENTITY_COUNT = 240

_SCOPES = {
    "科技": "技术开发、技术咨询、技术服务、技术推广；软件开发；计算机系统服务",
    "信息技术": "信息系统集成服务；数据处理和存储支持服务；信息技术咨询服务",
    "贸易": "销售日用品、五金交电、电子产品、服装鞋帽；货物进出口；技术进出口",
    "餐饮管理": "餐饮服务；餐饮管理；食品经营（销售预包装食品）",
    "食品": "食品生产；食品销售；农副产品销售",
    "建筑工程": "建设工程施工；建筑劳务分包；工程管理服务",
    "医药": "药品零售；医疗器械经营；保健食品销售",
    "物流": "道路货物运输（不含危险货物）；国内货物运输代理；仓储服务",
    "文化传媒": "组织文化艺术交流活动；广告设计、代理；会议及展览服务",
    "环保科技": "环境保护专用设备销售；大气污染治理；水污染治理；固体废物治理",
}
_LEGAL_NOTE = "。（依法须经批准的项目，经相关部门批准后方可开展经营活动）"
_COMPANY_TYPES = (
    ("有限责任公司", "有限公司", 70),
    ("股份有限公司", "股份有限公司", 10),
    ("个人独资企业", "经营部", 10),
    ("有限合伙企业", "合伙企业（有限合伙）", 10),
)
_STATUS_LABELS = (("存续", 75), ("在业", 8), ("吊销", 6), ("注销", 7), ("迁出", 4))
_CAPITALS = (100_000, 500_000, 1_000_000, 3_000_000, 5_000_000, 10_000_000, 50_000_000)
_CENT = Decimal("0.01")


def _credit_code(rng: random.Random, category: str, region: Region) -> str:
    org = "".join(rng.choice(CREDIT_CODE_ALPHABET) for _ in range(9))
    body = f"9{category}{region.code}{org}"
    return body + credit_code_check_char(body)


def _capital(rng: random.Random, category: str) -> Decimal:
    if category != "1":
        return Decimal(rng.choice((10_000, 30_000, 50_000, 200_000))).quantize(_CENT)
    if rng.random() < 0.1:
        return (Decimal(rng.randint(10_000_000, 999_999_999)) / 100).quantize(_CENT)
    return Decimal(rng.choice(_CAPITALS)).quantize(_CENT)


def _naming(rng: random.Random, category: str, region: Region, surname: str) -> tuple[str, str, str]:
    """(name, entity type, industry) for an entity of the credit code category."""
    trade = rng.choice(TRADE_NAMES)
    if category == "2":
        return f"{region.district}{surname}记便利店", "个体工商户", "食品"
    if category == "3":
        return f"{region.district}{trade}种植专业合作社", "农民专业合作社", "食品"
    industry = rng.choice(list(_SCOPES))
    kind, suffix, _ = rng.choices(_COMPANY_TYPES, [w for *_, w in _COMPANY_TYPES])[0]
    return f"{region.city_short}{trade}{industry}{suffix}", kind, industry


def _address(rng: random.Random, region: Region) -> str:
    return (
        f"{region.city}{region.district}{rng.choice(('建国路', '科技园路', '人民路', '中山路', '工业大道'))}"
        f"{rng.randint(1, 500)}号{rng.randint(1, 30)}层{rng.randint(1, 30):02d}室"
    )


def _sample_entity(rng: random.Random, today: dt.date) -> LegalEntity:
    region = Region("110000", "北京市", "北京市", "朝阳区")
    name = "北京一窗通信息技术有限公司"
    established = dt.date(2003, 6, 18)
    return LegalEntity(
        credit_code=SAMPLE_ENTITY_CODE,
        name=name,
        entity_type="有限责任公司",
        legal_representative=SAMPLE_PERSON_ID,
        registered_capital=Decimal("5000000.00"),
        status_label="存续",
        established_on=established,
        address="北京市朝阳区建国路88号12层1201室",
        business_scope=_SCOPES["信息技术"] + _LEGAL_NOTE,
        licences=entity_licences(rng, today, SAMPLE_ENTITY_CODE, name, region, established, "ACTIVE", "餐饮管理"),
    )


def generate_entities(rng: random.Random, today: dt.date, persons: Sequence[Person]) -> list[LegalEntity]:
    """The sample entity first, then :data:`ENTITY_COUNT` entities in all, represented by adults of ``persons``."""
    entities = [_sample_entity(rng, today)]
    codes, names = {SAMPLE_ENTITY_CODE}, {entities[0].name}
    while len(entities) < ENTITY_COUNT:
        region = rng.choice(REGIONS)
        category = rng.choices("123", (85, 10, 5))[0]
        code = _credit_code(rng, category, region)
        representative = rng.choice(persons)
        name, kind, industry = _naming(rng, category, region, representative.name[0])
        if code in codes or name in names:
            continue
        codes.add(code)
        names.add(name)
        label = rng.choices([s for s, _ in _STATUS_LABELS], [w for _, w in _STATUS_LABELS])[0]
        established = today - dt.timedelta(days=rng.randint(30, 25 * 365))
        scope = _SCOPES[industry] + _LEGAL_NOTE
        entity = LegalEntity(
            code,
            name,
            kind,
            representative.id_number,
            _capital(rng, category),
            label,
            established,
            _address(rng, region),
            scope,
            (),
        )
        licences = entity_licences(rng, today, code, name, region, established, entity.status, industry)
        entities.append(dataclasses.replace(entity, licences=licences))
    return entities
