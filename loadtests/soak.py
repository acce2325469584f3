"""Soak test: the local system under mixed traffic for 10 minutes, with the embedded Redis killed once and
a gRPC service restarted once; writes reports/soak.md (and .json next to it).

    python loadtests/soak.py                      # make soak
    python loadtests/soak.py --duration 3m --restart-service retriever

The system runs as `synth up` runs it (supervised: the killed Redis and the stopped service are started
again by the supervisor, not by this script), with models and the index from --state-dir and Redis, the
Parquet store and the spool in a temporary directory. Traffic, all at once: cache hits, uncached syntheses
back to back, batches (cached and fresh queries), and the query queue (enqueue and status). At the end the
script waits for the queue, the spool and the sink to drain and checks every accepted pair id a client was
given (responses and the queue's completion records) against the Parquet store: none lost, none twice.
Exit code 0 when that holds and every failed request is a deliberate 503, 1 otherwise, 2 when the soak
could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from loadtests.common import DEFAULT_QUERIES_FILE, HOT_QUERIES, QueriesFileError, load_queries, payload  # noqa: E402
from loadtests.results import parse_duration  # noqa: E402
from loadtests.soak_report import Event, PairAccount, Sample, write  # noqa: E402

QUEUE, DONE, DEAD = "tailsynth:queries", "tailsynth:queries:done", "tailsynth:queries:dead"
REQUEST_TIMEOUT_S = 300.0
DRAIN_TIMEOUT_S = 600.0


@dataclass
class Phases:
    """The phase each request starts in, and the timeline of what the soak did and saw."""

    started: float = field(default_factory=time.monotonic)
    current: str = "steady"
    names: list[str] = field(default_factory=lambda: ["steady"])
    events: list[Event] = field(default_factory=list)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note(self, what: str) -> None:
        self.events.append(Event(round(self.elapsed(), 1), what))
        print(f"[soak] {self.elapsed():6.1f}s {what}", flush=True)

    def enter(self, phase: str, what: str) -> None:
        self.current = phase
        if phase not in self.names:
            self.names.append(phase)
        self.note(f"{what} -> phase '{phase}'")


@dataclass
class Traffic:
    client: httpx.AsyncClient
    phases: Phases
    fresh: Iterator[str]
    samples: list[Sample] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    job_ids: list[str] = field(default_factory=list)

    async def send(self, kind: str, method: str, path: str, body: Any = None) -> dict[str, Any] | None:
        """One request, recorded as a Sample; the JSON body of a 2xx answer."""
        phase = self.phases.current
        started = time.monotonic()
        try:
            response = await self.client.request(method, path, json=body, timeout=REQUEST_TIMEOUT_S)
        except httpx.HTTPError as error:
            self.samples.append(
                Sample(kind, phase, time.monotonic() - started, f"error: {type(error).__name__}")
            )
            return None
        latency = time.monotonic() - started
        reply = response.json() if response.is_success else None
        cached, items = None, ()
        if kind == "batch" and reply is not None:
            items = tuple(item["status"] for item in reply["results"])
            for item in reply["results"]:
                if item["status"] == 200:
                    self._collect(item["result"])
        elif kind in ("cached", "uncached") and reply is not None:
            cached = bool(reply["cached"])
            self._collect(reply)
        elif kind == "enqueue" and reply is not None:
            self.job_ids += reply["ids"]
        self.samples.append(Sample(kind, phase, latency, str(response.status_code), cached, items))
        return reply

    def _collect(self, result: dict[str, Any]) -> None:
        self.accepted |= {pair["pair_id"] for pair in result["pairs"] if pair["accepted"]}


async def every(period_s: float, stop: asyncio.Event, action: Callable[[], Awaitable[object]]) -> None:
    """Run action once per period (back to back when it takes longer) until stop is set."""
    await asyncio.sleep(random.uniform(0, period_s))  # users start spread over their first period
    while not stop.is_set():
        started = time.monotonic()
        await action()
        pause = period_s - (time.monotonic() - started)
        if pause > 0:
            try:
                await asyncio.wait_for(stop.wait(), pause)
            except TimeoutError:
                pass


def users(traffic: Traffic, args: argparse.Namespace, stop: asyncio.Event) -> list[Awaitable[None]]:
    def hot() -> dict[str, Any]:
        return payload(random.choice(HOT_QUERIES))

    def fresh() -> dict[str, Any]:
        return payload(next(traffic.fresh), use_cache=False)

    def batch() -> dict[str, Any]:
        return {"queries": [hot(), hot(), fresh(), fresh()]}

    def enqueue() -> dict[str, Any]:
        return {"queries": [{"query": next(traffic.fresh), "num_rewrites": 2, "top_k": 10} for _ in range(2)]}

    post = "POST"
    plan: list[Awaitable[None]] = []
    plan += [
        every(args.cached_pace, stop, lambda: traffic.send("cached", post, "/v1/synthesize", hot()))
        for _ in range(args.cached_users)
    ]
    plan += [
        every(0, stop, lambda: traffic.send("uncached", post, "/v1/synthesize", fresh()))
        for _ in range(args.uncached_users)
    ]
    plan.append(
        every(args.batch_every, stop, lambda: traffic.send("batch", post, "/v1/synthesize:batch", batch()))
    )
    plan.append(every(args.queue_every, stop, lambda: traffic.send("enqueue", post, "/v1/queue", enqueue())))
    plan.append(every(args.queue_every / 2, stop, lambda: traffic.send("queue_status", "GET", "/v1/queue")))
    return plan


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> float:
    """Poll until condition holds; return the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            if await condition():
                return time.monotonic() - started
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() - started > timeout_s:
            raise CannotRun(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.25)


class CannotRun(RuntimeError):
    """The soak could not run (exit code 2)."""


async def chaos(system: Any, traffic: Traffic, args: argparse.Namespace) -> None:
    """Kill the embedded Redis at --redis-kill-at, stop a gRPC service at --restart-at; the supervisor
    starts both again. Phases follow what /readyz reports."""
    phases, client = traffic.phases, traffic.client

    async def ready(status: str = "ready") -> bool:
        response = await client.get("/readyz", timeout=10)
        return bool(response.json()["status"] == status)

    await asyncio.sleep(max(args.redis_kill_at - phases.elapsed(), 0))
    victim = system.redis.process.pid
    os.kill(victim, signal.SIGKILL)
    phases.enter("redis killed", f"SIGKILL to the embedded Redis (pid {victim})")

    async def redis_back() -> bool:
        return bool(system.redis.process.pid != victim and system.redis.process.poll() is None)

    took = await wait_until(redis_back, 120, "the supervisor to restart Redis")
    phases.enter(
        "redis recovering",
        f"Redis restarted by the supervisor (pid {system.redis.process.pid}) after {took:.1f}s",
    )
    took = await wait_until(ready, 300, "the gateway to be ready again (Redis reachable, spool replayed)")
    phases.enter(
        "steady after redis", f"/readyz ready again (Redis reachable, spool replayed) after {took:.1f}s"
    )

    name = args.restart_service
    await asyncio.sleep(max(args.restart_at - phases.elapsed(), 0))
    stopped = system.processes[name].pid
    os.kill(stopped, signal.SIGTERM)
    phases.enter(f"{name} restarting", f"SIGTERM to {name} (pid {stopped})")

    async def serving_again() -> bool:
        return (
            system.processes[name].pid != stopped
            and (await client.get("/readyz", timeout=10)).status_code == 200
        )

    took = await wait_until(serving_again, 600, f"{name} to be SERVING again")
    phases.enter(f"steady after {name}", f"{name} restarted by the supervisor and SERVING after {took:.1f}s")


def stored_pair_ids(store: Path) -> list[str]:
    return [
        pid
        for path in sorted(store.glob("pairs-*.parquet"))
        for pid in pq.read_table(path, columns=["pair_id"]).column("pair_id").to_pylist()
    ]


async def settle(traffic: Traffic, redis_url: str, store: Path, spool: Path) -> PairAccount:
    """After the traffic: wait for queued queries, the spool and the sink; account for every pair."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        wanted = set(traffic.job_ids)

        async def finished() -> tuple[dict[str, dict[str, str]], set[str]]:
            done = {f["job_id"]: f for _, f in await redis.xrange(DONE)}
            dead = {f["job_id"] for _, f in await redis.xrange(DEAD)}
            return done, dead

        async def queue_drained() -> bool:
            done, dead = await finished()
            return wanted <= set(done) | dead

        async def spool_empty() -> bool:
            return not list(spool.glob("*.jsonl"))

        took = await wait_until(queue_drained, DRAIN_TIMEOUT_S, "the queued queries to finish")
        traffic.phases.note(f"every queued query finished {took:.1f}s after the traffic stopped")
        done, dead = await finished()
        for job in wanted & set(done):
            traffic.accepted |= set(json.loads(done[job]["pair_ids"]))
        await wait_until(spool_empty, DRAIN_TIMEOUT_S, "the spool to be replayed")

        async def sink_caught_up() -> bool:
            groups = await redis.xinfo_groups("tailsynth:pairs")
            sink = next(g for g in groups if g["name"] == "sink")
            return bool(sink["pending"] == 0 and not sink["lag"])  # lag None: unknown, pending says enough

        took = await wait_until(sink_caught_up, DRAIN_TIMEOUT_S, "the sink to store every pair")
        traffic.phases.note(f"the sink had stored and acknowledged every entry {took:.1f}s later")
        return PairAccount(
            traffic.accepted,
            stored_pair_ids(store),
            unfinished_jobs=len(wanted - set(done) - dead),
            dead_jobs=len(wanted & dead),
        )
    finally:
        await redis.aclose()


async def soak(
    system: Any, args: argparse.Namespace, queries: list[str], scratch: Path
) -> tuple[Traffic, PairAccount]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=system.gateway_url, limits=limits) as client:
        print(f"[soak] warming the cache with {len(HOT_QUERIES)} hot queries", flush=True)
        warm = Traffic(client, Phases(), iter(()))
        for query in HOT_QUERIES:
            if await warm.send("uncached", "POST", "/v1/synthesize", payload(query)) is None:
                raise CannotRun(f"the warm-up synthesis of {query!r} failed: {warm.samples[-1].status}")
        traffic = Traffic(client, Phases(), itertools.cycle(queries), accepted=set(warm.accepted))
        print(f"[soak] traffic for {args.duration}s", flush=True)
        stop = asyncio.Event()
        running = [asyncio.ensure_future(user) for user in users(traffic, args, stop)]
        faults = asyncio.ensure_future(chaos(system, traffic, args))
        await asyncio.sleep(args.duration)
        stop.set()
        traffic.phases.note("traffic stopped; waiting for requests in flight")
        await asyncio.gather(*running)
        if not faults.done():
            faults.cancel()
            traffic.phases.note("the traffic ended before every fault was injected and recovered from")
        elif faults.exception() is not None:
            raise faults.exception()  # type: ignore[misc]
        account = await settle(traffic, system.redis_url, scratch / "store", scratch / "spool")
    return traffic, account


def context_lines(args: argparse.Namespace, traffic: Traffic) -> list[str]:
    return [
        f"the local system as `synth up` runs it (supervised), on {os.cpu_count()} CPU cores shared with the "
        "traffic generator: rewriter, retriever, judge (models on CPU), sink, 1 queue worker (concurrency 1), "
        "gateway, embedded valkey",
        f"traffic for {args.duration} s: {args.cached_users} users sending cache hits (one every "
        f"{args.cached_pace:g} s each), {args.uncached_users} users sending uncached syntheses back to back "
        f"(fresh queries, use_cache false), a batch (2 cached + 2 fresh) every {args.batch_every:g} s, 2 queries "
        f"enqueued every {args.queue_every:g} s and the queue status every {args.queue_every / 2:g} s",
        f"faults: the embedded Redis SIGKILLed at {args.redis_kill_at:g} s, {args.restart_service} sent SIGTERM "
        f"at {args.restart_at:g} s (both started again by the supervisor)",
        f"{len(traffic.samples)} requests; 503 is the answer while a part is down (queue routes without Redis, "
        "uncached syntheses without a backend), with Retry-After",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=parse_duration, default="10m", help="traffic time")
    parser.add_argument("--redis-kill-at", type=parse_duration, help="default: a quarter into the traffic")
    parser.add_argument("--restart-at", type=parse_duration, help="default: two thirds into the traffic")
    parser.add_argument("--restart-service", choices=["rewriter", "retriever", "judge"], default="judge")
    parser.add_argument("--cached-users", type=int, default=4)
    parser.add_argument(
        "--cached-pace", type=float, default=1.0, help="seconds between a cache-hit user's requests"
    )
    parser.add_argument("--uncached-users", type=int, default=2)
    parser.add_argument("--batch-every", type=float, default=10.0)
    parser.add_argument("--queue-every", type=float, default=30.0)
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".tailsynth", help="models and index")
    parser.add_argument("--queries-file", type=Path, default=DEFAULT_QUERIES_FILE)
    parser.add_argument("--report", type=Path, default=ROOT / "reports" / "soak.md")
    args = parser.parse_args(argv)
    args.redis_kill_at = args.redis_kill_at or args.duration // 4
    args.restart_at = args.restart_at or args.duration * 2 // 3
    if not 0 < args.redis_kill_at < args.restart_at < args.duration:
        parser.error("expected 0 < --redis-kill-at < --restart-at < --duration")
    if (
        min(args.cached_users, args.uncached_users) < 0
        or min(args.cached_pace, args.batch_every, args.queue_every) <= 0
    ):
        parser.error("user counts must not be negative, periods must be positive")
    return args


def start_system(args: argparse.Namespace, scratch: Path) -> Any:
    from services.cli.system import LocalSystem, Ports

    env = {k: v for k, v in os.environ.items() if k != "TAILSYNTH_REDIS_URL"}
    env |= {
        "TAILSYNTH_STORE_DIR": str(scratch / "store"),
        "TAILSYNTH_STORE_SPOOL_DIR": str(scratch / "spool"),
        "TAILSYNTH_QUEUE_CONCURRENCY": "1",
    }
    system = LocalSystem(
        state_dir=args.state_dir,
        catalog=ROOT / "data" / "demo" / "catalog.csv",
        ports=Ports.free(),
        redis_dir=scratch / "redis",
        workers=1,
        base_env=env,
    )
    print(f"[soak] starting the local system (models and index in {args.state_dir})", flush=True)
    system.start()
    return system


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from services.core.errors import ConfigError

    try:
        queries = load_queries(args.queries_file)
    except QueriesFileError as error:
        print(f"[soak] could not run: {error}", file=sys.stderr)
        return 2
    random.seed(0)
    random.shuffle(queries)
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory(prefix="tailsynth-soak-") as tmp:
        scratch = Path(tmp)
        try:
            system = start_system(args, scratch)
        except ConfigError as error:
            print(f"[soak] could not run: {error}", file=sys.stderr)
            return 2
        try:
            with system.supervised():
                traffic, account = asyncio.run(soak(system, args, queries, scratch))
        except (CannotRun, httpx.HTTPError, OSError) as error:
            print(f"[soak] could not run: {error}", file=sys.stderr)
            return 2
        finally:
            system.stop()
    verdict = write(
        args.report,
        context_lines(args, traffic),
        traffic.phases.events,
        traffic.samples,
        account,
        traffic.phases.names,
    )
    print(args.report.read_text(encoding="utf-8"), flush=True)
    print(f"[soak] report: {args.report} and {args.report.with_suffix('.json')}", flush=True)
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
