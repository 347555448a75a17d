"""Reading a REST department's answers: a status carried in the body, and records spread over pages.

Both are configured per query of a ``rest`` source (``status`` may also be set once for the whole source); the
keys are documented in :mod:`adapters.rest`. This module holds their models and the rules that judge an answer;
:class:`adapters.rest.RestAdapter` sends the requests.

A status in the body::

    >>> status = RestStatus(path="code", message="msg", ok=["0000"], not_found=["1004"])
    >>> read_status({"code": "1004", "msg": "无此人"}, status, source="hrss", what="GET /p/{key}")
    False
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapters.base import Record, department_message
from gateway.errors import BadSourceData, SourceCredentialsRefused, SourceFault

__all__ = ["PageAnswer", "RestPaging", "RestStatus", "dig", "read_pages", "read_status"]


class _Keys(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RestStatus(_Keys):
    """Where an answer says how it went (``path``, dotted), its message (``message``) and which codes mean what.

    ``ok``: read the record at the query's ``result``. ``not_found``: the key is absent. ``refused``: the department
    refused the gateway's credentials. Any other code is the department's fault. Codes compare as text (``0`` and
    ``"0"`` are the same code).
    """

    path: str = Field(min_length=1)
    message: str | None = None
    ok: list[str] = Field(min_length=1)
    not_found: list[str] = Field(default_factory=list)
    refused: list[str] = Field(default_factory=list)

    @field_validator("ok", "not_found", "refused", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return [str(code) for code in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _each_code_means_one_thing(self) -> RestStatus:
        groups = {"ok": self.ok, "not_found": self.not_found, "refused": self.refused}
        for name, codes in groups.items():
            for other, other_codes in groups.items():
                if name < other and (both := sorted(set(codes) & set(other_codes))):
                    raise ValueError(f"code {both[0]!r} is in both {name} and {other}")
        return self


class RestPaging(_Keys):
    """How a ``many: true`` query's records are spread over pages.

    Page numbers: ``page`` names the parameter carrying the page number, counted from ``start``. Cursors: ``cursor``
    is the dotted path, in an answer, of the next page's cursor (absent, null or empty on the last page) and
    ``cursor_param`` the parameter sending it back. Either way ``size`` names the parameter carrying the page size
    ``size_value``, ``total`` the dotted path of the department's count of all records, and ``max_records`` the most
    records the gateway reads for one key.
    """

    page: str | None = None
    start: int = Field(1, ge=0)
    cursor: str | None = None
    cursor_param: str | None = None
    size: str | None = None
    size_value: int = Field(50, ge=1, le=10_000)
    total: str | None = None
    max_records: int = Field(1000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _one_style(self) -> RestPaging:
        if (self.page is None) == (self.cursor is None):
            raise ValueError("set page (page numbers) or cursor (cursors), not both or neither")
        if self.cursor is not None and self.cursor_param is None:
            raise ValueError("cursor needs cursor_param: the parameter that sends the cursor back")
        if self.page is not None and self.cursor_param is not None:
            raise ValueError("cursor_param goes with cursor, not with page")
        return self

    def fields(self, number: int, cursor: str | None) -> dict[str, Any]:
        """The request fields for one page: its number or cursor, and the page size."""
        fields: dict[str, Any] = {}
        if self.page is not None:
            fields[self.page] = number
        elif cursor is not None and self.cursor_param is not None:
            fields[self.cursor_param] = cursor
        if self.size is not None:
            fields[self.size] = self.size_value
        return fields


# One page as the adapter read it: its records and the whole answer (for ``total`` and ``cursor``); None for an
# answer meaning "no such key".
PageAnswer = tuple[list[Record], Any] | None


def dig(value: Any, path: str | None) -> Any:
    """The value at a dotted path (numbers index lists); ``LookupError(part)`` names the missing part.

    >>> dig({"data": {"items": [{"id": 7}]}}, "data.items.0.id")
    7
    """
    if not path:
        return value
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise LookupError(part)
    return value


def read_status(
    document: Any,
    status: RestStatus,
    *,
    source: str,
    what: str,
    keys: Sequence[str] = (),
    secrets: Sequence[str] = (),
) -> bool:
    """``True`` when the answer's status is ``ok``, ``False`` for ``not_found``; else the department's error, with
    its code in ``department_code`` and its message cleaned by :func:`department_message`."""
    try:
        code = str(dig(document, status.path))
    except LookupError:
        raise BadSourceData(source, f"{what} answered without its status at '{status.path}'") from None
    if code in status.ok:
        return True
    if code in status.not_found:
        return False
    message = f"{what} answered status {department_message(code, keys, secrets)}"
    if status.message is not None:
        try:
            said = dig(document, status.message)
        except LookupError:
            said = None
        if said not in (None, ""):
            message += f": {department_message(said, keys, secrets)}"
    if code in status.refused:
        message += f"; check sources.{source}.credentials"
        raise SourceCredentialsRefused(source, message, department_code=code)
    raise SourceFault(source, message, department_code=code)


async def read_pages(
    paging: RestPaging,
    read_page: Callable[[dict[str, Any]], Awaitable[PageAnswer]],
    *,
    source: str,
    query: str,
) -> list[Record] | None:
    """Every record of one key, page after page; ``None`` when the first page says the key is unknown.

    Never a silent cut: more records than ``max_records`` (reported by ``total`` or read), pages holding fewer or
    more records than ``total``, or a cursor that comes round again raise :class:`BadSourceData` with the counts.
    """
    records: list[Record] = []
    number, cursor, cursors = paging.start, None, set[str]()
    total: int | None = None
    first_size: int | None = None
    for pages_read in range(paging.max_records + 1):
        answer = await read_page(paging.fields(number, cursor))
        if answer is None:
            if pages_read == 0:
                return None
            break  # the key vanished between pages: counted against total below
        found, document = answer
        if pages_read == 0 and paging.total is not None:
            total = _total(document, paging.total, source, query)
            if total > paging.max_records:
                raise BadSourceData(
                    source,
                    f"query '{query}': the department reports {total} records, more than paging.max_records "
                    f"({paging.max_records}); raise max_records or narrow the query",
                )
        records.extend(found)
        if len(records) > paging.max_records:
            raise BadSourceData(
                source,
                f"query '{query}': more than paging.max_records ({paging.max_records}) records "
                f"after {pages_read + 1} pages; raise max_records or narrow the query",
            )
        if not found or (total is not None and len(records) >= total):
            break
        if paging.cursor is not None:
            cursor = _next_cursor(document, paging.cursor)
            if cursor is None:
                break
            if cursor in cursors:
                raise BadSourceData(source, f"query '{query}': the department sent a cursor a second time")
            cursors.add(cursor)
        else:
            first_size = first_size or len(found)
            if len(found) < (paging.size_value if paging.size is not None else first_size):
                break  # a short page is the last
            number += 1
    if total is not None and len(records) < total:
        raise BadSourceData(
            source, f"query '{query}': pages ended after {len(records)} of the {total} records the department reports"
        )
    if total is not None and len(records) > total:  # a page served twice, or records added while paging
        raise BadSourceData(
            source, f"query '{query}': the pages held {len(records)} records, the department reports {total}"
        )
    return records


def _total(document: Any, path: str, source: str, query: str) -> int:
    try:
        value = dig(document, path)
        total = int(value)
    except LookupError:
        raise BadSourceData(source, f"query '{query}': the first page has no total at '{path}'") from None
    except (TypeError, ValueError):
        raise BadSourceData(source, f"query '{query}': the total at '{path}' is not a number") from None
    if total < 0:
        raise BadSourceData(source, f"query '{query}': the total at '{path}' is negative")
    return total


def _next_cursor(document: Any, path: str) -> str | None:
    try:
        value = dig(document, path)
    except LookupError:
        return None
    return None if value is None or value == "" else str(value)
