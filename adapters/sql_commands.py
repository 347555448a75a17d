"""Writes to a department's database: a SQL source's ``commands``, each one INSERT or UPDATE of one table.

A command names its table and, per column, the parameter whose value goes there; a parameter whose unified value
has a department code (a status, an event type) names the code table, written as the ``provides`` section writes
it (department code: unified value), and is written as the code. An UPDATE also names the columns that pick its
row (``match``): it must touch exactly one row, or nothing is written (``WriteConflict``); so does an INSERT whose
row is already there::

    sources:
      approval:
        kind: sql
        commands:
          open_case:
            insert: T_BJ
            values: {BJBH: caseNumber, SXBM: serviceItem, SQRZJHM: applicant,
                     SQRLX: {param: applicantKind, codes: {"1": PERSON, "2": LEGAL_ENTITY}},
                     BJZT: {param: status, codes: *case_status}, SLSJ: submittedAt, BJSX: deadline}
          set_status:
            update: T_BJ
            match: {BJBH: caseNumber, BJZT: {param: previousStatus, codes: *case_status}}
            values: {BJZT: {param: status, codes: *case_status}, BJSJ: closedAt}

(YAML anchors let the ``provides`` code tables be written once.) Tables and columns are checked against the
reflected schema at start-up, a ``ConfigError`` naming ``commands.<command>.<key>``. Every value is a bound
parameter of the column's type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Column, Table, insert, update

from adapters.base import AdapterCommand
from gateway.errors import ConfigError

__all__ = ["BoundCommand", "SqlCommand", "SqlValue", "bind_command"]


class SqlValue(BaseModel):
    """A column's value: the parameter ``param``, written as its department code when ``codes`` is given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    param: str
    codes: dict[str, str] | None = None


class SqlCommand(AdapterCommand):
    """One write: ``insert`` into a table, or ``update`` the one row of a table that ``match`` picks."""

    insert: str | None = None
    update: str | None = None
    values: dict[str, str | SqlValue]
    match: dict[str, str | SqlValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_statement(self) -> SqlCommand:
        if (self.insert is None) == (self.update is None):
            raise ValueError("give one of insert: <table> or update: <table>")
        if self.update is not None and not self.match:
            raise ValueError("an update names the columns picking its row (match)")
        if self.insert is not None and self.match:
            raise ValueError("an insert has no match")
        if not self.values:
            raise ValueError("values: at least one column")
        return self

    @property
    def table(self) -> str:
        table = self.insert if self.insert is not None else self.update
        assert table is not None
        return table


@dataclass(frozen=True)
class _Slot:
    column: Column[Any]
    param: str
    codes: Mapping[str, str] | None  # unified value -> department code

    def value(self, params: Mapping[str, Any], convert: Any) -> Any:
        if self.param not in params:
            raise KeyError(f"no parameter {self.param!r} for column {self.column.name}")
        value = params[self.param]
        if value is None:
            return None
        if self.codes is not None:
            unified = getattr(value, "value", value)
            if unified not in self.codes:
                raise ValueError(f"{unified!r} has no code for column {self.column.name}")
            value = self.codes[unified]
        return convert(self.column, value)


@dataclass(frozen=True)
class BoundCommand:
    """A command resolved against the reflected table: the statement it runs for given parameters."""

    table: Table
    is_update: bool
    values: tuple[_Slot, ...]
    match: tuple[_Slot, ...]

    def statement(self, params: Mapping[str, Any], convert: Any) -> Any:
        values = {slot.column.name: slot.value(params, convert) for slot in self.values}
        if not self.is_update:
            return insert(self.table).values(values)
        conditions = [slot.column == slot.value(params, convert) for slot in self.match]
        return update(self.table).where(*conditions).values(values)


def bind_command(prefix: str, spec: SqlCommand, table: Table, find: Any) -> BoundCommand:
    """``spec`` against ``table``; ``find(table, name)`` a column by its legacy name (``None``: no such column)."""

    def slots(key: str, given: Mapping[str, str | SqlValue]) -> tuple[_Slot, ...]:
        out = []
        for name, value in given.items():
            column = find(table, name)
            if column is None:
                known = ", ".join(c.name for c in table.columns)
                raise ConfigError(f"{prefix}.{key}.{name}", f"no column {name!r} in {table.name}; columns: {known}")
            value = value if isinstance(value, SqlValue) else SqlValue(param=value)
            codes = {unified: code for code, unified in value.codes.items()} if value.codes is not None else None
            out.append(_Slot(column, value.param, codes))
        return tuple(out)

    return BoundCommand(table, spec.update is not None, slots("values", spec.values), slots("match", spec.match))
