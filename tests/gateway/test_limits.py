"""The query limits on the gateway's own schema: what a front end sends passes, what an attacker sends does not."""

from __future__ import annotations

import functools

import pytest
import strawberry

from gateway.config import LimitsConfig, SecurityConfig
from gateway.extensions.errors import ErrorCodes
from gateway.extensions.limits import QueryLimits
from gateway.hardening import hardening_extensions
from schema.query import build_schema


def gateway_schema(**limits: int) -> strawberry.Schema:
    return build_schema([functools.partial(ErrorCodes, debug=False), QueryLimits.factory(LimitsConfig(**limits))])


async def refused(schema: strawberry.Schema, query: str) -> list[str]:
    """Codes of the errors refusing the document; errors with a path come from execution (no sources here)."""
    result = await schema.execute(query)
    return [(error.extensions or {}).get("code", "") for error in result.errors or () if error.path is None]


CASES = "{ cases(first: 20) { edges { node { caseNumber status } } pageInfo { endCursor } } }"


async def test_a_paged_listing_is_within_the_default_cost() -> None:
    assert await refused(gateway_schema(), CASES) == []


async def test_cost_multiplies_by_first() -> None:
    # cases(first: 20) → 1 + 20 × (edges (1 + 1 × node (1 + 2)) + pageInfo (1 + 1)) = 121: edges is the page
    assert await refused(gateway_schema(max_cost=121), CASES) == []
    assert await refused(gateway_schema(max_cost=120), CASES) == ["QUERY_TOO_COSTLY"]


async def test_a_list_without_first_counts_the_default_size() -> None:
    query = "{ persons(idNumbers: []) { idNumber } }"  # 1 + 10 × 1
    assert await refused(gateway_schema(max_cost=11), query) == []
    assert await refused(gateway_schema(max_cost=10), query) == ["QUERY_TOO_COSTLY"]


async def test_depth_follows_fragments() -> None:
    query = "{ cases(first: 1) { ...E } } fragment E on CaseConnection { edges { node { caseNumber } } }"
    assert await refused(gateway_schema(max_depth=4), query) == []
    assert await refused(gateway_schema(max_depth=3), query) == ["QUERY_TOO_DEEP"]


async def test_fragment_cycles_are_reported_not_followed() -> None:
    query = "{ cases(first: 1) { ...A } } fragment A on CaseConnection { ...B } fragment B on CaseConnection { ...A }"
    assert set(await refused(gateway_schema(), query)) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_a_fragment_bomb_is_measured_without_expanding_it() -> None:
    fragments = ["fragment F0 on PageInfo { a0: endCursor }"]
    fragments += [f"fragment F{i} on PageInfo {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 40)]
    query = "{ cases(first: 1) { pageInfo { ...F39 } } } " + " ".join(fragments)
    codes = await refused(gateway_schema(max_tokens=100_000), query)
    assert "TOO_MANY_ALIASES" in codes
    assert "QUERY_TOO_COSTLY" in codes


async def test_too_many_root_fields() -> None:
    query = "{ " + " ".join(f'c{i}: case(caseNumber: "{i}") {{ status }}' for i in range(3)) + " }"
    assert await refused(gateway_schema(max_root_fields=3), query) == []
    assert await refused(gateway_schema(max_root_fields=2), query) == ["TOO_MANY_ROOT_FIELDS"]


async def test_too_many_directives() -> None:
    query = "{ " + " ".join(f"t{i}: __typename @include(if: true)" for i in range(3)) + " }"
    assert await refused(gateway_schema(max_directives=3), query) == []
    assert await refused(gateway_schema(max_directives=2), query) == ["TOO_MANY_DIRECTIVES"]


async def test_too_many_tokens_before_parsing() -> None:
    assert await refused(gateway_schema(max_tokens=10), "{ " + "__typename " * 10 + "}") == ["TOO_MANY_TOKENS"]
    # an unfinished document within the limit is the parser's to report
    result = await gateway_schema(max_tokens=10).execute("{ __typename " + " " * 20)
    assert result.errors is not None
    assert result.errors[0].message.startswith("Syntax Error: Expected Name, found <EOF>")


@pytest.mark.parametrize(("production", "allowed"), [(True, False), (False, True)])
async def test_introspection_on_the_gateway_schema(production: bool, allowed: bool) -> None:
    security = SecurityConfig(production=production)
    schema = build_schema([functools.partial(ErrorCodes, debug=False), *hardening_extensions(security)])
    result = await schema.execute("{ __schema { queryType { name } } }")
    assert (result.errors is None) is allowed
