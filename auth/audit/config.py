"""The ``auth.audit`` section: where the disclosure audit lives, how long it is kept, how long a request may wait.

auth:
  audit:
    url: postgresql+asyncpg://onewindow@db/onewindow
    schema: audit                 # optional; the connection's default schema otherwise
    retention: 183d               # at least 180 days (allow_short_retention: true for tests only)
    write_timeout: 2s             # a request waits this long for its commit, then fails closed
    batch_max: 500                # entries committed together in one transaction, at most
    seal_key: ${ONEWINDOW_AUDIT_SEAL_KEY}   # optional: HMAC-SHA256 chain, at least 32 bytes, kept out of the database
"""

from __future__ import annotations

from typing import Self

from pydantic import ConfigDict, Field, model_validator

from gateway.durations import DatabaseUrl, Duration, KeySecret, Strict

__all__ = [
    "DEFAULT_BATCH_MAX",
    "DEFAULT_RETENTION",
    "DEFAULT_WRITE_TIMEOUT",
    "MIN_RETENTION",
    "AuditConfig",
]

DEFAULT_RETENTION = 183 * 86400.0
MIN_RETENTION = 180 * 86400.0
"""The shortest retention the rules on electronic supervision allow for disclosure logs."""
DEFAULT_WRITE_TIMEOUT = 2.0
DEFAULT_BATCH_MAX = 500


class AuditConfig(Strict):
    """Where the disclosure audit lives and how it behaves.

    ``retention`` must be at least 180 days unless ``allow_short_retention`` is set (tests and development);
    ``mask_principals_for_citizens`` masks staff subjects (``zh***ei``) in a citizen's own access log.
    ``seal_key`` seals the hash chain: every hash is an HMAC under it, so that rewriting records and recomputing the
    hashes after them needs the key as well as the database. Every gateway writing the store, and ``onewindow audit
    verify``/``prune``, must be given the same key; a store is sealed, or not, from its first record.

    >>> AuditConfig(url="postgresql+asyncpg://onewindow@db/onewindow", write_timeout="500ms").write_timeout
    0.5
    """

    # ``schema`` in YAML; ``db_schema`` in Python, where ``schema`` would shadow a BaseModel method.
    model_config = ConfigDict(populate_by_name=True)

    url: DatabaseUrl = "sqlite+aiosqlite:///onewindow-audit.db"
    db_schema: str | None = Field(default=None, alias="schema")
    retention: Duration = DEFAULT_RETENTION
    allow_short_retention: bool = False
    write_timeout: Duration = DEFAULT_WRITE_TIMEOUT
    batch_max: int = Field(default=DEFAULT_BATCH_MAX, ge=1)
    mask_principals_for_citizens: bool = True
    seal_key: KeySecret | None = None

    @property
    def seal(self) -> bytes | None:
        """The seal key as bytes, or ``None`` for an unsealed chain."""
        return None if self.seal_key is None else self.seal_key.get_secret_value().encode()

    @model_validator(mode="after")
    def _retention_is_long_enough(self) -> Self:
        if self.retention < MIN_RETENTION and not self.allow_short_retention:
            raise ValueError(
                f"retention must be at least {MIN_RETENTION / 86400:g}d "
                "(set allow_short_retention: true only for tests and development)"
            )
        return self
