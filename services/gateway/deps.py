"""Typed FastAPI dependencies; the lifespan in app.py puts these on app.state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from services.gateway.cache import ResultCache
from services.gateway.config import GatewaySettings
from services.pipeline.synthesize import SynthesisPipeline
from services.store.writer import PairWriter
from services.worker.queue import QueryQueue


@dataclass
class Resources:
    settings: GatewaySettings
    redis: Redis
    pipeline: SynthesisPipeline
    cache: ResultCache
    writer: PairWriter
    queue: QueryQueue


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
