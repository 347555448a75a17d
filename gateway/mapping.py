"""From a department's record to unified values: paths, code tables, date formats, exact numbers.

Departments name things their own way (``XM`` for a name, ``20`` for married, ``19491231`` for a date). A source's
``provides`` section says where each unified field sits in a record and how to read it; this module applies it::

    >>> from schema.catalog import CATALOG
    >>> from gateway.config import FieldMap
    >>> spec = CATALOG["Person"].fields["maritalStatus"]
    >>> read_field("civil_affairs", "maritalStatus", spec,
    ...            FieldMap(value="MarriageStatus", codes={"20": "MARRIED"}), [{"MarriageStatus": "20"}])
    'MARRIED'

A value that cannot be read (an unknown code, a malformed date) is a :class:`~gateway.errors.BadSourceData`
naming the source, the field, the path and the type it found -- never the value, which is a department's data and
may be personal; it never becomes a silent ``None``. ``absent`` in a field's map is its value when the department
holds no record for the key.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.config import FieldMap
from gateway.errors import BadSourceData
from gateway.model import FieldSpec, ValueType

__all__ = ["CHINA_STANDARD_TIME", "EntityKey", "read_field", "read_path"]

# Department systems record local time without an offset; in China that is UTC+8 all year.
CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")

_TRUE = {"true", "1", "y", "yes", "t"}
_FALSE = {"false", "0", "n", "no", "f"}


class EntityKey(tuple[str, str]):
    """A reference to an entity: ``(entity name, key)``."""

    __slots__ = ()

    def __new__(cls, entity: str, key: str) -> EntityKey:
        return super().__new__(cls, (entity, key))

    @property
    def entity(self) -> str:
        return self[0]

    @property
    def key(self) -> str:
        return self[1]


def read_path(record: Any, path: str | None) -> Any:
    """The value at a dotted path (``Persons.Person.XM``), or ``None`` where any step is missing."""
    if path is None or path == ".":
        return record
    value = record
    for part in _steps(path):
        if type(value) is dict or isinstance(value, Mapping):  # records are plain dicts: skip the ABC's check
            value = value[part] if part in value else _folded(value, part)
        elif isinstance(value, Sequence) and not isinstance(value, str) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


@functools.lru_cache(maxsize=4096)
def _steps(path: str) -> tuple[str, ...]:
    """A dotted path's steps; the configuration's few paths are split once."""
    return tuple(path.split("."))


def _folded(mapping: Mapping[str, Any], name: str) -> Any:
    """A key spelled in another case (PostgreSQL folds unquoted legacy column names to lower case)."""
    folded = name.casefold()
    for key, value in mapping.items():
        if isinstance(key, str) and key.casefold() == folded:
            return value
    return None


def read_field(
    source: str, field: str, spec: FieldSpec, fmap: FieldMap, records: Sequence[Any], *, many_query: bool = False
) -> Any:
    """The unified value of ``field`` from the records one key returned. ``None`` (or ``[]``) when there are none,
    or the field's ``absent`` value."""
    reader = _Reader(source, field)
    if spec.many:
        items: Sequence[Any]
        if many_query:
            items = records
        elif not records:
            items = []
        else:
            items = _listed(read_path(records[0], fmap.value))
        if spec.ref is not None:
            keys = [reader.ref(spec, fmap, item) for item in items]
            return [k for k in keys if k is not None]
        return [reader.item(spec, fmap, item, use_value=many_query) for item in items]
    if not records:
        if fmap.absent is None:
            return None
        return reader.scalar(spec, fmap.model_copy(update={"codes": None}), fmap.absent)
    return reader.value(spec, fmap, records[0])


def _listed(value: Any) -> list[Any]:
    return [] if value is None else (value if isinstance(value, list) else [value])


def _kind_of(raw: Any) -> str:
    """What was found, without the value: its type, and its length for text."""
    if isinstance(raw, str):
        return f"a text of {len(raw)} character" + ("" if len(raw) == 1 else "s")
    return f"a {type(raw).__name__}"


class _Reader:
    def __init__(self, source: str, field: str) -> None:
        self.source = source
        self.field = field

    def _bad(self, path: str | None, raw: Any, why: str) -> BadSourceData:
        where = f"{self.field} (from {path})" if path else self.field
        return BadSourceData(self.source, f"cannot read {where}: {why}, got {_kind_of(raw)}")

    def value(self, spec: FieldSpec, fmap: FieldMap, record: Any) -> Any:
        if spec.ref is not None:
            return self.ref(spec, fmap, record)
        if spec.many:  # a list inside an object: each element read as a list field's items are
            return [self.item(spec, fmap, item, use_value=True) for item in _listed(read_path(record, fmap.value))]
        if spec.is_object:
            return self.object(spec, fmap, record, use_value=False)
        return self.scalar(spec, fmap, read_path(record, fmap.value))

    def item(self, spec: FieldSpec, fmap: FieldMap, item: Any, *, use_value: bool) -> Any:
        """One element of a list: an object, or a scalar read from the element itself."""
        if spec.is_object:
            return self.object(spec, fmap, item, use_value=use_value)
        return self.scalar(spec, fmap, item if fmap.value is None or not use_value else read_path(item, fmap.value))

    def object(self, spec: FieldSpec, fmap: FieldMap, record: Any, *, use_value: bool) -> dict[str, Any] | None:
        base = record if (use_value or spec.many) else read_path(record, fmap.value)
        if base is None:
            return None
        assert spec.fields is not None
        assert fmap.fields is not None
        return {name: self.value(spec.fields[name], sub, base) for name, sub in fmap.fields.items()}

    def ref(self, spec: FieldSpec, fmap: FieldMap, record: Any) -> EntityKey | None:
        raw = read_path(record, fmap.value)
        if raw is None or str(raw).strip() == "":
            return None
        key = str(raw).strip()
        assert spec.ref is not None
        if spec.members is None:
            return EntityKey(spec.ref, key)
        assert fmap.kind is not None
        kind_raw = read_path(record, fmap.kind.value)
        kind = (fmap.kind.codes or {}).get(str(kind_raw), str(kind_raw))
        entity = spec.members.get(kind)
        if entity is None:
            raise self._bad(fmap.kind.value, kind_raw, f"{spec.ref} kind is not in the code table")
        return EntityKey(entity, key)

    def scalar(self, spec: FieldSpec, fmap: FieldMap, raw: Any) -> Any:
        if raw is None or (isinstance(raw, str) and raw.strip() == "" and spec.value_type is not ValueType.STRING):
            return None
        if fmap.codes is not None:
            code = str(raw).strip()
            if code not in fmap.codes:
                raise self._bad(fmap.value, raw, "code is not in the code table")
            raw = fmap.codes[code]
        if spec.enum is not None:
            name = str(raw).strip().upper()
            if name not in spec.enum.__members__:
                raise self._bad(fmap.value, raw, f"not a {spec.enum.__name__}")
            return spec.enum[name]
        try:
            return self._convert(spec.value_type, fmap.date_format, raw)
        except (ValueError, TypeError, InvalidOperation):
            raise self._bad(fmap.value, raw, f"not a {spec.value_type or 'String'}") from None

    @staticmethod
    def _convert(kind: ValueType | None, date_format: str | None, raw: Any) -> Any:
        if kind is None or kind in (ValueType.STRING, ValueType.ID_NUMBER, ValueType.CREDIT_CODE):
            return str(raw).strip() if isinstance(raw, str) else str(raw)
        if kind is ValueType.INT:
            if isinstance(raw, bool):
                raise TypeError("a boolean is not a number")
            return int(raw)
        if kind is ValueType.FLOAT:
            if isinstance(raw, bool):
                raise TypeError("a boolean is not a number")
            return float(raw)
        if kind is ValueType.BOOL:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError("not a boolean")
        if kind is ValueType.DECIMAL:
            if isinstance(raw, bool):
                raise TypeError("a boolean is not a number")
            return raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
        if kind is ValueType.DATE:
            if isinstance(raw, dt.datetime):
                return raw.date()
            if isinstance(raw, dt.date):
                return raw
            text = str(raw).strip()
            if date_format:
                return dt.datetime.strptime(text, date_format).date()
            return dt.date.fromisoformat(text[:10])
        # DATETIME
        if isinstance(raw, dt.datetime):
            value = raw
        elif isinstance(raw, dt.date):
            value = dt.datetime.combine(raw, dt.time())
        else:
            text = str(raw).strip()
            value = dt.datetime.strptime(text, date_format) if date_format else dt.datetime.fromisoformat(text)
        return value if value.tzinfo else value.replace(tzinfo=CHINA_STANDARD_TIME)
