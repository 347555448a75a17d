"""The audit entries :class:`auth.access.Access` builds: one shape for a request's disclosures and for the
workflow's writes recorded before they are made."""

from __future__ import annotations

import datetime as dt

from auth.access import Access
from auth.policy import Policy
from auth.principal import Principal, PrincipalKind
from demo.data import SAMPLE_PERSON_ID
from gateway.config import GatewayConfig, parse_config
from gateway.sources import SourceSet

# One source (never called: these tests build entries, they read nothing).
_ONE_SOURCE = {
    "sources": {
        "civil_affairs": {
            "kind": "rest",
            "department": "民政局",
            "base_url": "http://127.0.0.1:9",
            "queries": {"marriage": {"path": "/marriage/{key}"}},
            "provides": {"Person.maritalStatus": {"value": "MarriageStatus", "sharing": "conditional"}},
        },
    },
}


def _access(principal: Principal) -> Access:
    config: GatewayConfig = parse_config(_ONE_SOURCE, {})
    sources = SourceSet(config, {}).for_request(principal)
    return Access(principal, Policy(config), sources, request_id="req-1", client_request_id="cli-1", client="10.0.0.7")


CLERK = Principal("clerk-1", PrincipalKind.CLERK, "oidc:hall", department="民政局", window="A-01")


async def test_an_entry_names_the_principal_the_request_and_what_was_disclosed() -> None:
    access = _access(CLERK)
    entry = access.audit_entry(
        "Person", SAMPLE_PERSON_ID, released=("phone", "name"), masked=("phone",), sources=("hrss", "civil_affairs")
    )
    assert (entry.subject, entry.principal_kind, entry.via) == ("clerk-1", "clerk", "oidc:hall")
    assert (entry.department, entry.window, entry.client) == ("民政局", "A-01", "10.0.0.7")
    assert (entry.request_id, entry.client_request_id, entry.at) == ("req-1", "cli-1", access.at)
    assert (entry.entity, entry.applicant, entry.purpose) == ("Person", SAMPLE_PERSON_ID, None)
    assert (entry.released, entry.masked, entry.refused) == (("name", "phone"), ("phone",), ())
    assert entry.sources == ("civil_affairs", "hrss")
    assert entry.outcome == "released"


async def test_the_outcome_follows_what_was_released_and_refused() -> None:
    access = _access(CLERK)
    partial = access.audit_entry("Person", SAMPLE_PERSON_ID, released=("name",), refused=("phone",))
    refused = access.audit_entry("Person", SAMPLE_PERSON_ID, refused=("phone",))
    assert (partial.outcome, refused.outcome) == ("partial", "refused")


async def test_a_write_is_recorded_at_its_own_time_under_its_case() -> None:
    at = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    entry = _access(CLERK).audit_entry(
        "Person", SAMPLE_PERSON_ID, released=("write:rateCase",), sources=("approval",), purpose="BJ1", at=at
    )
    assert (entry.at, entry.purpose, entry.released, entry.outcome) == (at, "BJ1", ("write:rateCase",), "released")


async def test_the_request_entries_are_one_per_applicant_disclosed() -> None:
    access = _access(CLERK)
    access.refuse("Person", SAMPLE_PERSON_ID, "phone", None, "NOT_SHARED", "not shared")
    [entry] = access.entries()
    assert entry == access.audit_entry("Person", SAMPLE_PERSON_ID, refused=("phone",))
