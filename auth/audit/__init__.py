"""The tamper-evident disclosure audit: who received which applicant's data, when, why, and from which source.

>>> async def example(entries: list[AuditEntry]) -> None:
...     async with AuditLog(AuditConfig(url="sqlite+aiosqlite:///audit.db")) as audit:
...         await audit.write(entries)                 # committed, or AuditUnavailable: fail closed
...         report = await audit.verify()              # report.ok, or report.first_broken and report.reason
...         recent = await audit.query(AuditFilter(subject="zhang.wei"), limit=20)

See :mod:`auth.audit.chain` for the hash chain, :mod:`auth.audit.retention` for pruning and
:mod:`auth.audit.cli` for ``onewindow audit verify`` and ``onewindow audit prune``.
"""

from __future__ import annotations

from auth.audit.chain import VerifyReport
from auth.audit.config import AuditConfig
from auth.audit.entry import AuditEntry, Outcome
from auth.audit.log import AuditLog
from auth.audit.query import AuditFilter, AuditRecord, mask_subject
from auth.audit.retention import PruneReport

__all__ = [
    "AuditConfig",
    "AuditEntry",
    "AuditFilter",
    "AuditLog",
    "AuditRecord",
    "Outcome",
    "PruneReport",
    "VerifyReport",
    "mask_subject",
]
