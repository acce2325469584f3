"""Per-key rate limits in Redis (GCRA: a smooth limit with a burst of one minute's allowance).

One Lua script per request keeps the check and the update atomic across gateway replicas, and
tells a refused caller exactly how long to wait (Retry-After).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

PERIOD_MS = 60_000
KEY_PREFIX = "tailsynth:ratelimit:"

# KEYS[1] = bucket; ARGV = ms per request, burst window ms, cost. Returns {allowed, retry_after_ms}.
# The theoretical arrival time (tat) is when the bucket would be empty again.
_GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
local wait = new_tat - burst - now
if wait > 0 then return {0, math.ceil(wait)} end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(new_tat - now))
return {1, 0}
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int = 0


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_GCRA)

    async def charge(self, name: str, per_minute: int, cost: int = 1) -> Verdict:
        """Take `cost` requests from `name`'s allowance of `per_minute`.

        A cost above the whole allowance can never pass and is refused with a wait of one period.
        While Redis is unreachable requests pass (logged): the limit protects capacity, and an outage
        of the limiter should not take the API down with it.
        """
        if cost > per_minute:
            return Verdict(False, PERIOD_MS // 1000)
        try:
            allowed, wait_ms = await self._script(
                keys=[KEY_PREFIX + name], args=[PERIOD_MS / per_minute, PERIOD_MS, cost]
            )
        except RedisError as error:
            log.warning("rate limit not checked, redis unavailable: %s", error)
            return Verdict(True)
        return Verdict(bool(allowed), max(1, math.ceil(int(wait_ms) / 1000)) if not allowed else 0)
