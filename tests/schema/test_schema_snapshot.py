"""The printed schema is kept in schema/schema.graphql so that every change to the public API shows in review.

After an intended change: ONEWINDOW_UPDATE_SNAPSHOT=1 pytest tests/schema/test_schema_snapshot.py
"""

from __future__ import annotations

import os
from pathlib import Path

from schema.query import build_schema

SNAPSHOT = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"


def test_printed_schema_matches_snapshot() -> None:
    printed = str(build_schema()) + "\n"
    if os.environ.get("ONEWINDOW_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(printed, encoding="utf-8")
    assert printed == SNAPSHOT.read_text(encoding="utf-8"), "schema changed: review it and update the snapshot"


def test_public_api_has_the_promised_roots() -> None:
    printed = str(build_schema())
    for root in (
        "person(idNumber: IdNumber!, purpose: PurposeInput = null): Person",
        "legalEntity(creditCode: CreditCode!, purpose: PurposeInput = null): LegalEntity",
        "me: Person!",
        "invalidate(source: String!, key: String = null): Int!",
        "case(caseNumber: String!, purpose: PurposeInput = null): Case",
        "cases(applicant: String = null, status: CaseStatus = null, first: Int = 20, after: String = null, "
        "purpose: PurposeInput = null): CaseConnection!",
    ):
        assert root in printed
    assert "registeredCapital: Decimal" in printed
