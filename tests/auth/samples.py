"""The people, disclosures and configuration that several auth tests share.

* :data:`API_KEY`: what an API key looks like, its id and secret in groups 1 and 2.
* :data:`ZHANG_WEI`: the Civil Affairs clerk at window A-07, as the province's OIDC issuer signs him in.
* :data:`COUNTER_A07`: the principal an API key for counter A-07 stands for.
* :func:`disclosure`: an audit entry of zhang.wei looking up an applicant.
* :data:`CIVIL_AFFAIRS` and :func:`write_config`: a configuration file naming one department.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml

from auth.audit import AuditEntry
from auth.principal import Principal, PrincipalKind

API_KEY = re.compile(r"owk_([0-9a-f]{16})_([A-Za-z0-9_-]{43,})")  # the key id, then the secret
ZHANG_WEI = Principal(
    subject="zhang.wei",
    kind=PrincipalKind.CLERK,
    via="oidc:province",
    department="民政局",
    window="A-07",
    roles=frozenset({"case_handler", "supervisor"}),
    name="张伟",
)
COUNTER_A07 = Principal(
    subject="hall-3-window-7",
    kind=PrincipalKind.CLERK,
    via="api_key",
    department="Civil Affairs Bureau",
    window="A-07",
    roles=frozenset({"case_handler", "supervisor"}),
    scopes=frozenset({"person:read"}),
)


def disclosure(n: int, at: dt.datetime, **changes: Any) -> AuditEntry:
    """Request ``r-{n}`` at ``at``: zhang.wei, signed in through the province, is given applicant
    11010519491231002X's name and marital status, the phone masked and the degrees refused."""
    entry = AuditEntry(
        at=at,
        request_id=f"r-{n}",
        subject="zhang.wei",
        principal_kind="clerk",
        via="oidc:province",
        department="民政局",
        window="A-07",
        client="10.0.0.7",
        entity="Person",
        applicant="11010519491231002X",
        released=("name", "maritalStatus"),
        masked=("phone",),
        refused=("degrees",),
        sources=("civil_affairs", "public_security"),
        purpose="BJ2026000001",
        outcome="partial",
    )
    return dataclasses.replace(entry, **changes)


CIVIL_AFFAIRS: dict[str, Any] = {
    "kind": "rest",
    "department": "Civil Affairs Bureau",
    "base_url": "http://127.0.0.1:9",
    "queries": {"marriage": {"path": "/marriage/{key}"}},
    "provides": {"Person.maritalStatus": {"value": "MarriageStatus"}},
}


def write_config(path: Path, **sections: Any) -> Path:
    """Write a configuration file with the source ``civil_affairs`` and ``sections`` (``auth=...``) to ``path``."""
    data = {"sources": {"civil_affairs": CIVIL_AFFAIRS}, **sections}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path
