"""Typed FastAPI dependencies; the lifespan in app.py puts these on app.state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from services.gateway.cache import ResultCache
from services.gateway.config import GatewaySettings
from services.pipeline.synthesize import SynthesisPipeline
from services.store.stream import TrainingStream


@dataclass
class Resources:
    settings: GatewaySettings
    redis: Redis
    pipeline: SynthesisPipeline
    cache: ResultCache
    stream: TrainingStream


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
