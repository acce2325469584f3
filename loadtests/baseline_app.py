"""The raw baseline for cache hits: FastAPI + one Redis GET, nothing else.

Serves POST /raw by returning the bytes stored under one key, as the gateway returns a cached
synthesis; the load test measures both with the same request in the same run. The Redis client and
uvicorn are set up as the gateway sets up its own, so the difference is the gateway's request path.

    python -m loadtests.baseline_app --port 8100 --redis-url redis://127.0.0.1:6379/0 --key KEY
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis


def create_app(redis_url: str, key: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=2.0)
        yield
        await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/raw")
    async def raw(request: Request) -> Response:
        await request.body()
        return Response(await request.app.state.redis.get(key), media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    # The gateway's uvicorn settings: one process, default loop, no access log.
    uvicorn.run(
        create_app(args.redis_url, args.key),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
