"""The errors OneWindow raises, as one small typed tree.

::

    GatewayError                      anything OneWindow raises on purpose
    ├── ConfigError                   a configuration file or value is wrong (names the key path)
    ├── SourceError                   one department system failed; carries the source name
    │   ├── SourceTimeout             SOURCE_TIMEOUT      no answer within the source's timeout
    │   ├── SourceUnavailable         SOURCE_UNAVAILABLE  connection refused, DNS, TLS, circuit open
    │   ├── SourceMaintenance         SOURCE_MAINTENANCE  inside a configured maintenance window; not called
    │   ├── SourceFault               SOURCE_FAULT        the department answered with an error (fault, 5xx)
    │   │   └── SourceCredentialsRefused  SOURCE_CREDENTIALS_REFUSED  the department refused the gateway's credentials
    │   └── BadSourceData             BAD_SOURCE_DATA     the answer could not be read or mapped
    ├── BadUserInput                  BAD_USER_INPUT      a key or argument is malformed; no department is called
    │   ├── NotFound                  NOT_FOUND           a case or service item the approval platform does not know
    │   └── InvalidCaseAction         INVALID_CASE_ACTION an action not valid in the case's status (or done already)
    ├── IdempotencyConflict           IDEMPOTENCY_CONFLICT  a key reused for another input, or still in progress
    ├── WriteConflict                 (within adapters)   a write found its rows changed meanwhile; rolled back
    ├── AuthError                     UNAUTHENTICATED     no credentials (HTTP 401)
    │   └── InvalidCredentials        UNAUTHENTICATED     credentials refused: signature, expiry, audience, revoked
    ├── Forbidden                     FORBIDDEN           a field refused to this caller, with a reason
    └── AuditUnavailable              AUDIT_UNAVAILABLE   the audit store cannot commit; personal fields withheld

Adapters translate third-party exceptions (httpx, zeep, SQLAlchemy) into ``SourceError`` subclasses with
``raise ... from exc``; nothing from those libraries crosses the adapter boundary.

Every error carries ``extensions``, which graphql-core copies onto the GraphQL error it wraps::

    >>> SourceTimeout("civil_affairs", "no answer within 2.0s").extensions
    {'code': 'SOURCE_TIMEOUT', 'source': 'civil_affairs'}
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuditUnavailable",
    "AuthError",
    "BadSourceData",
    "BadUserInput",
    "ConfigError",
    "Forbidden",
    "GatewayError",
    "IdempotencyConflict",
    "InvalidCaseAction",
    "InvalidCredentials",
    "NotFound",
    "SourceCredentialsRefused",
    "SourceError",
    "SourceFault",
    "SourceMaintenance",
    "SourceTimeout",
    "SourceUnavailable",
    "WriteConflict",
]


class GatewayError(Exception):
    """Base of every error OneWindow raises on purpose."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code}


class ConfigError(GatewayError):
    """A configuration value is wrong. ``path`` names it, e.g. ``sources.civil_affairs.timeout``."""

    code = "CONFIG_ERROR"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


class SourceError(GatewayError):
    """One department system failed. Only the fields it provides are affected.

    ``department_code`` is the department's own error code when it gave one (a SOAP fault code, ``"4001"`` in a
    ``{"code": ..., "msg": ...}`` body); it goes to ``extensions.departmentCode``. The message names paths, keys
    and types, never a value from a department's record.

        >>> SourceFault("housing_fund", "refused: 参数错误", department_code="4001").extensions["departmentCode"]
        '4001'
    """

    code = "SOURCE_ERROR"

    def __init__(self, source: str, message: str, *, department_code: str | None = None) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.reason = message
        self.department_code = department_code

    @property
    def extensions(self) -> dict[str, Any]:
        extensions: dict[str, Any] = {"code": self.code, "source": self.source}
        if self.department_code is not None:
            extensions["departmentCode"] = self.department_code
        return extensions


class SourceTimeout(SourceError):
    code = "SOURCE_TIMEOUT"


class SourceUnavailable(SourceError):
    code = "SOURCE_UNAVAILABLE"


class SourceMaintenance(SourceError):
    code = "SOURCE_MAINTENANCE"


class SourceFault(SourceError):
    code = "SOURCE_FAULT"


class SourceCredentialsRefused(SourceFault):
    """The department refused the gateway's own credentials (HTTP 401/403, an OAuth2 token endpoint's refusal,
    a status code in the body that means so): a configuration problem at ``sources.<name>.credentials``."""

    code = "SOURCE_CREDENTIALS_REFUSED"


class BadSourceData(SourceError):
    code = "BAD_SOURCE_DATA"


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"


class NotFound(BadUserInput):
    """A case or service item named in a request that the approval platform does not know; nothing is written."""

    code = "NOT_FOUND"


class InvalidCaseAction(BadUserInput):
    """An action the case's current status does not allow (a supplement for a closed case, a second rating)."""

    code = "INVALID_CASE_ACTION"


class IdempotencyConflict(GatewayError):
    """An idempotency key already used for a different input, or whose first request has not finished."""

    code = "IDEMPOTENCY_CONFLICT"


class WriteConflict(GatewayError):
    """A write's rows were not as expected (a status changed meanwhile, a row already there): nothing was written.
    Raised by adapters' ``write``; the workflow turns it into :class:`InvalidCaseAction`."""

    code = "WRITE_CONFLICT"


class AuthError(GatewayError):
    """The caller could not be authenticated. ``reason`` goes to ``WWW-Authenticate``'s ``error_description``."""

    code = "UNAUTHENTICATED"


class InvalidCredentials(AuthError):
    """Credentials were presented but refused: bad signature, expired, wrong audience, revoked key, used ticket."""


class Forbidden(GatewayError):
    """An authenticated caller may not receive this field; ``reason`` says why (``PURPOSE_REQUIRED``, ...)."""

    code = "FORBIDDEN"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "reason": self.reason}


class AuditUnavailable(GatewayError):
    """The audit store cannot commit: personal fields are withheld (fail closed)."""

    code = "AUDIT_UNAVAILABLE"
