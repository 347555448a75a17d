"""Masking of personal values for callers who may know a value exists but not read it whole.

>>> mask_value(Mask.ID_NUMBER, "11010519491231002X")
'110***********002X'
>>> mask_value(Mask.PHONE, "13812341234")
'138****1234'
>>> mask_value(Mask.ADDRESS, "北京市西城区金融大街35号院2号楼")
'北京市西城区****'
>>> mask_value(Mask.ADDRESS, "广西壮族自治区南宁市青秀区民族大道100号")
'广西壮族自治区南宁市青秀区****'
>>> mask_value(Mask.NAME, "欧阳明")
'欧**'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from auth.config import Mask

__all__ = ["mask_value"]

# An address is kept up to its district (区/县/旗, not the 区 of a province-level 自治区) or, failing that, its city.
_DISTRICT = re.compile(r"(?<!自治)[区县旗]")
_CITY = re.compile(r"[市州盟]")
_CUT = "****"


def _id_number(value: str) -> str:
    if len(value) < 8:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def _phone(value: str) -> str:
    digits = value.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def _address(value: str) -> str:
    match = _DISTRICT.search(value) or _CITY.search(value)
    end = match.end() if match is not None and match.end() < len(value) else max(1, len(value) // 3)
    return value[:end] + _CUT


def _name(value: str) -> str:
    return value[:1] + "*" * max(1, len(value) - 1)


_MASKS = {Mask.ID_NUMBER: _id_number, Mask.PHONE: _phone, Mask.ADDRESS: _address, Mask.NAME: _name}


def mask_value(mask: Mask, value: Any) -> Any:
    """The masked form of ``value``; values that are not strings (and lists of them) are left as they are."""
    if isinstance(value, str):
        return _MASKS[mask](value)
    if isinstance(value, list):
        return [mask_value(mask, v) for v in value]
    return value


def mask_parts(value: Any, parts: Mapping[str, Mask]) -> Any:
    """``value`` (a record, or a list of records) with the sub-fields at the dotted paths of ``parts`` masked: a
    rule on ``Person.socialInsurance.city`` or on a raw record's ``Person.raw.allowance.active.XM``.

        >>> mask_parts([{"XM": "王秀英", "JE": 820}], {"XM": Mask.NAME})
        [{'XM': '王**', 'JE': 820}]
    """
    if isinstance(value, list):
        return [mask_parts(item, parts) for item in value]
    if not isinstance(value, Mapping):
        return value
    masked = dict(value)
    nested: dict[str, dict[str, Mask]] = {}
    for path, mask in parts.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = mask
        elif masked.get(head) is not None:
            masked[head] = mask_value(mask, masked[head])
    for head, inner in nested.items():
        if masked.get(head) is not None:
            masked[head] = mask_parts(masked[head], inner)
    return masked
