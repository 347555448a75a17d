"""The tamper-evident disclosure audit (skeleton)."""

from __future__ import annotations

from auth.audit.entry import AuditEntry, Outcome
from gateway.durations import Duration, Strict

__all__ = ["AuditConfig", "AuditEntry", "Outcome"]


class AuditConfig(Strict):
    url: str = "sqlite+aiosqlite:///onewindow-audit.db"
    retention: Duration = 183 * 86400.0
