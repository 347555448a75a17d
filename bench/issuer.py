"""A small OIDC issuer for the benchmark: an RSA signing key, its JWK set served over HTTP, RS256 access tokens.

The benchmark process holds the key and signs the tokens; a separate process serves the public half, as an identity
provider would, so the gateway fetches its keys over real HTTP::

    issuer = BenchIssuer("http://127.0.0.1:9100")
    issuer.write_jwks(tmp / "jwks.json")      # then: python bench/issuer.py --port 9100 --jwks tmp/jwks.json
    token = issuer.token("bench-client-1", {"onewindow_kind": "service", "roles": ["case_handler"]})

Served: ``/jwks`` (the key set) and ``/.well-known/openid-configuration`` (its ``issuer`` and ``jwks_uri``).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["AUDIENCE", "JWKS_PATH", "BenchIssuer"]

AUDIENCE = "onewindow"
JWKS_PATH = "/jwks"
TOKEN_TTL = 3600.0


class BenchIssuer:
    """An identity provider's signing side: one RSA-2048 key with a ``kid``, tokens for ``audience``.

    >>> issuer = BenchIssuer("http://127.0.0.1:9100")
    >>> jwt.get_unverified_header(issuer.token("svc", {}))["kid"] == issuer.kid
    True
    """

    def __init__(self, url: str, *, audience: str = AUDIENCE) -> None:
        self.url = url
        self.audience = audience
        self.kid = uuid.uuid4().hex[:16]
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def jwks_url(self) -> str:
        return f"{self.url}{JWKS_PATH}"

    def jwks(self) -> dict[str, Any]:
        """The public key set, as the issuer publishes it."""
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()), encoding="utf-8")
        return path

    def token(self, subject: str, claims: Mapping[str, Any], *, ttl: float = TOKEN_TTL) -> str:
        """An RS256 access token for ``subject`` with ``claims``, valid from now for ``ttl`` seconds."""
        now = int(time.time())
        payload = {**claims, "iss": self.url, "aud": self.audience, "sub": subject, "iat": now, "exp": now + int(ttl)}
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self.kid})


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a JWK set as an OIDC issuer would.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--jwks", type=Path, required=True, help="the JWK set to serve (BenchIssuer.write_jwks)")
    args = parser.parse_args()
    keys = json.loads(args.jwks.read_text(encoding="utf-8"))
    issuer = f"http://127.0.0.1:{args.port}"

    async def jwks(request: Request) -> Response:
        return JSONResponse(keys)

    async def discovery(request: Request) -> Response:
        return JSONResponse({"issuer": issuer, "jwks_uri": f"{issuer}{JWKS_PATH}"})

    app = Starlette(routes=[Route(JWKS_PATH, jwks), Route("/.well-known/openid-configuration", discovery)])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
