"""The operator's credential: what tells an operator's request for details from anyone's ready-or-not.

``/readyz`` answers anyone with whether this process should get traffic; the reasons (each department's state, the
audit store's last error, which can name a database host and port) and ``/metrics`` are for the operator, who
presents ``Authorization: Bearer <http.operator_token>``::

    operator = OperatorCredential(config.http.operator_token)
    routes.append(Route("/metrics", operator.required(metrics_endpoint(registry))))

A credential that is presented and wrong is refused (401), not treated as none: an operator whose token is stale
learns so at once instead of reading a short answer as the whole story.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["OperatorCredential"]

Endpoint = Callable[[Request], Awaitable[Response]]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="onewindow-operator"'}


class OperatorCredential:
    """Checks the operator's bearer token in constant time; ``token`` ``None``: no request is the operator's.

    >>> operator = OperatorCredential(SecretStr("an-operator-token-of-32-bytes-or-more"))
    >>> operator.matches("Bearer an-operator-token-of-32-bytes-or-more"), operator.matches("Bearer guess")
    (True, False)
    """

    def __init__(self, token: SecretStr | None) -> None:
        self._expected = None if token is None else f"Bearer {token.get_secret_value()}".encode()

    def matches(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header value is the operator's token."""
        if self._expected is None:
            return False
        return hmac.compare_digest(authorization.encode(), self._expected)

    def presented(self, request: Request) -> bool | None:
        """``None`` when the request presents no credential, else whether it is the operator's."""
        authorization = request.headers.get("authorization")
        return None if authorization is None else self.matches(authorization)

    @staticmethod
    def refusal() -> Response:
        """401, asking for the operator's bearer token."""
        return JSONResponse({"error": "the operator's credential is required"}, status_code=401, headers=_CHALLENGE)

    def required(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` for the operator only: any other request gets :meth:`refusal`."""

        async def guarded(request: Request) -> Response:
            if not self.presented(request):
                return self.refusal()
            return await endpoint(request)

        return guarded
