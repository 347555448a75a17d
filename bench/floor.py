"""The floor: a bare Starlette app answering POST /graphql with a fixed JSON body, under the same uvicorn.

python bench/floor.py --port 9000 --body answer.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    args = parser.parse_args()
    body = args.body.read_bytes()

    async def graphql(request: Request) -> Response:
        try:
            await request.body()
        except ClientDisconnect:  # wrk closes connections mid-request when its time is up
            return Response(status_code=499)
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/graphql", graphql, methods=["GET", "POST"])])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
