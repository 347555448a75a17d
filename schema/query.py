"""The root of the unified schema, and the one place the schema is assembled.

>>> schema = build_schema()
>>> "person(idNumber: IdNumber!): Person" in str(schema)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.schema.config import StrawberryConfig

from gateway.errors import BadUserInput
from gateway.keys import is_credit_code, is_id_number
from gateway.sources import encode_cursor
from schema.context import GatewayInfo
from schema.enums import CaseStatus
from schema.scalars import SCALARS, CreditCode, IdNumber
from schema.types import Case, LegalEntity, Person, requested_fields, selected_fields_of

__all__ = ["MAX_KEYS_PER_QUERY", "MAX_PAGE_SIZE", "CaseConnection", "CaseEdge", "PageInfo", "Query", "build_schema"]

MAX_PAGE_SIZE = 100
MAX_KEYS_PER_QUERY = 100
# Front ends send a few dozen distinct documents; parsing and validating each once saves ~3 ms per request.
DOCUMENT_CACHE_SIZE = 512


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class CaseEdge:
    cursor: str
    node: Case


@strawberry.type(description="A page of cases, Relay style: pass pageInfo.endCursor as `after` for the next.")
class CaseConnection:
    edges: list[CaseEdge]
    page_info: PageInfo


@strawberry.type(description="One endpoint over every department system: ask by the applicant's key.")
class Query:
    @strawberry.field(description="A natural person by citizen ID number.")
    def person(self, info: GatewayInfo, id_number: IdNumber) -> Person | None:
        return Person(key=str(id_number), requested=selected_fields_of(info))

    @strawberry.field(description=f"Several persons at once (at most {MAX_KEYS_PER_QUERY}), in the order asked.")
    def persons(self, info: GatewayInfo, id_numbers: list[IdNumber]) -> list[Person]:
        if len(id_numbers) > MAX_KEYS_PER_QUERY:
            raise BadUserInput(f"at most {MAX_KEYS_PER_QUERY} ID numbers per query, got {len(id_numbers)}")
        requested = selected_fields_of(info)
        return [Person(key=str(k), requested=requested) for k in id_numbers]

    @strawberry.field(description="A legal entity by unified social credit code.")
    def legal_entity(self, info: GatewayInfo, credit_code: CreditCode) -> LegalEntity | None:
        return LegalEntity(key=str(credit_code), requested=selected_fields_of(info))

    @strawberry.field(description="A case by its case number; null when the approval platform does not know it.")
    async def case(self, info: GatewayInfo, case_number: str) -> Case | None:
        key = case_number.strip()
        if not key:
            raise BadUserInput("a case number is required")
        if not await info.context.sources.exists("Case", key, "status"):
            return None
        return Case(key=key, requested=selected_fields_of(info))

    @strawberry.field(description="Cases, newest listing order of the approval platform, filtered and paged.")
    async def cases(
        self,
        info: GatewayInfo,
        applicant: str | None = None,
        status: CaseStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> CaseConnection:
        first = 20 if first is None else first
        if not 0 < first <= MAX_PAGE_SIZE:
            raise BadUserInput(f"first must be between 1 and {MAX_PAGE_SIZE}")
        if applicant is not None:
            applicant = applicant.strip().upper()
            if not (is_id_number(applicant) or is_credit_code(applicant)):
                raise BadUserInput("applicant must be a valid citizen ID number or unified social credit code")
        page = await info.context.sources.search(
            "Case", {"applicant": applicant, "status": status}, first=first, after=after
        )
        requested: frozenset[str] = frozenset()
        for selected in info.selected_fields:
            for edge in selected.selections:
                if getattr(edge, "name", None) == "edges":
                    for node in getattr(edge, "selections", ()):
                        if getattr(node, "name", None) == "node":
                            requested = requested_fields(node.selections)
        edges = [
            CaseEdge(cursor=encode_cursor(page.offset + i), node=Case(key=key, requested=requested))
            for i, key in enumerate(page.keys)
        ]
        return CaseConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=page.offset > 0,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


def build_schema(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
) -> strawberry.Schema:
    """The unified schema, with the gateway's extensions (classes or factories: one instance per request)."""
    caches = [lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE), lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE)]
    return strawberry.Schema(
        query=Query, extensions=[*extensions, *caches], config=StrawberryConfig(scalar_map=SCALARS)
    )
