"""`synth synthesize --queries FILE`: run the pipeline over a query log through the running gateway.

Each query goes to POST /v1/synthesize/stream, so the gateway's cache, store writes and spool apply
as for any caller, and its `stored` event says how many accepted pairs were new to the store. Every
finished query is appended to a journal; a re-run skips the queries done under the pipeline version
the gateway serves now (GET /readyz names it).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TextIO, TypeVar

import httpx

from services.cli import journal
from services.cli.enqueue import read_queries
from services.cli.journal import Finished, JournalEntry
from services.core.errors import InvalidInput
from services.pipeline.models import QueryItem

RETRY_STATUSES = frozenset({429, 503})
MAX_ATTEMPTS = 6
MAX_BACKOFF_S = 30.0
SHOW_PROBLEMS = 20


class Fatal(Exception):
    """A failure no query can get past (a refused API key): the run stops."""


T = TypeVar("T")
F = TypeVar("F", bound=Finished)
F_contra = TypeVar("F_contra", bound=Finished, contravariant=True)


class Progress(Protocol[F_contra]):
    """A run's counts: what the progress bar shows."""

    unit: str  # what is worked through, plural: "queries", "products"

    def add(self, entry: F_contra) -> None: ...

    def line(self) -> str: ...


@dataclass
class Tally:
    total: int
    skipped: int
    done: int = 0
    failed: int = 0
    accepted: int = 0
    new: int = 0
    duplicates: int = 0
    spooled: int = 0
    cached: int = 0
    started: float = field(default_factory=time.monotonic)
    unit: str = "queries"

    def line(self) -> str:
        return progress_line(self)

    def add(self, entry: JournalEntry) -> None:
        if not entry.ok:
            self.failed += 1
            return
        self.done += 1
        self.accepted += entry.accepted
        self.new += entry.new
        self.duplicates += entry.duplicates
        self.spooled += entry.spooled
        self.cached += entry.cached

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return (self.done + self.failed) / self.elapsed if self.elapsed > 0 else 0.0


def progress_line(tally: Tally, width: int = 24) -> str:
    finished = tally.done + tally.failed
    filled = width * finished // tally.total if tally.total else width
    eta = (tally.total - finished) / tally.rate if tally.rate > 0 else None
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{tally.total} · {tally.accepted} accepted"
        f" · {tally.failed} failed · {tally.skipped} skipped · {tally.rate:.2f} q/s"
        f" · ETA {_duration(eta) if eta is not None else '?'}"
    )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def _backoff(attempt: int) -> float:
    return min(MAX_BACKOFF_S, 2.0**attempt)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _detail(body: bytes) -> str:
    try:
        detail = json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:300]
    return detail if isinstance(detail, str) else json.dumps(detail)[:300]


async def _attempt(
    client: httpx.AsyncClient, item: QueryItem, version: str
) -> tuple[JournalEntry, float | None]:
    """One request: the entry it ends in, and the Retry-After the gateway asked for (if any)."""
    entry = JournalEntry(**item.model_dump(), pipeline_version=version, status=0)
    async with client.stream("POST", "/v1/synthesize/stream", json=item.model_dump()) as response:
        if response.status_code != 200:
            entry.status, entry.error = response.status_code, _detail(await response.aread())
            return entry, _retry_after(response)
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if event == "started":
                    entry.pipeline_version, entry.cached = data["pipeline_version"], data["cached"]
                elif event == "result":
                    entry.status, entry.accepted = 200, data["accepted_count"]
                elif event == "stored":
                    entry.new, entry.duplicates = data["new"], data["duplicates"]
                    entry.spooled = data["spooled"]
                elif event == "error":
                    entry.status, entry.error = data["status"], data["detail"]
    if entry.status == 0:
        entry.error = "the event stream ended before the result"
    return entry, None


async def with_retries(attempt: Callable[[], Awaitable[tuple[F, float | None]]], blank: Callable[[], F]) -> F:
    """One item's request, retrying 429/503 (after Retry-After) and lost connections with backoff; a
    refused API key stops the run (Fatal)."""
    for number in range(MAX_ATTEMPTS):
        try:
            entry, wait = await attempt()
        except httpx.TransportError as error:
            entry, wait = blank(), None
            entry.error = f"no answer from the gateway: {error!r}"
        if entry.status == 401:
            raise Fatal(f"the gateway refused the API key: {entry.error}")
        retry = entry.status in RETRY_STATUSES or entry.status == 0
        if not retry or number == MAX_ATTEMPTS - 1:
            return entry
        await asyncio.sleep(wait if wait is not None else _backoff(number))
    raise AssertionError("unreachable")


async def synthesize_query(client: httpx.AsyncClient, item: QueryItem, version: str) -> JournalEntry:
    """Synthesize one query, retrying 429/503 (after Retry-After) and lost connections with backoff."""
    return await with_retries(
        lambda: _attempt(client, item, version),
        lambda: JournalEntry(**item.model_dump(), pipeline_version=version, status=0),
    )


async def pipeline_version(client: httpx.AsyncClient, url: str, tries: int = 3) -> str:
    """The version the gateway synthesizes under now, from GET /readyz."""
    for attempt in range(tries):
        try:
            response = await client.get("/readyz")
        except httpx.TransportError as error:
            raise InvalidInput(f"cannot reach the gateway at {url}: {error}") from None
        body = response.json() if response.headers.get("content-type") == "application/json" else {}
        version = body.get("pipeline_version")
        if isinstance(version, str):
            return version
        if attempt < tries - 1:
            await asyncio.sleep(2.0)
    down = [name for name, ok in body.get("checks", {}).items() if not ok]
    raise InvalidInput(
        f"the gateway at {url} does not name its pipeline version (status {response.status_code}"
        + (f"; not answering: {', '.join(down)}" if down else "")
        + ")"
    )


@dataclass
class Run(Generic[T, F]):
    """Work through items with at most `concurrency` in flight, journaling each as it finishes, with a
    progress bar; Ctrl-C stops taking new items (a second abandons those in flight)."""

    todo: list[T]
    work: Callable[[T], Awaitable[F]]  # raises Fatal to stop the run
    tally: Progress[F]
    journal: TextIO
    concurrency: int
    name: Callable[[T], str] = repr
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    fatal: str | None = None
    failed: list[str] = field(default_factory=list)
    _drawn: float = 0.0

    def draw(self, force: bool = False) -> None:
        if force or time.monotonic() - self._drawn > 0.25:
            self._drawn = time.monotonic()
            print(f"\r{self.tally.line()}", end="", file=sys.stderr, flush=True)

    async def worker(self, queue: list[T]) -> None:
        while queue and not self.stop.is_set():
            item = queue.pop(0)
            try:
                entry = await self.work(item)
            except Fatal as error:
                self.fatal = str(error)
                self.stop.set()
                return
            journal.append(self.journal, entry)
            self.tally.add(entry)
            if not entry.ok:
                self.failed.append(f"{self.name(item)}: {entry.status} {entry.error}")
            self.draw()

    async def run(self) -> bool:
        """Work until done or stopped; True when Ctrl-C interrupted it."""
        queue = list(self.todo)
        tasks = [asyncio.ensure_future(self.worker(queue)) for _ in range(max(1, self.concurrency))]
        interrupts = 0

        def interrupted() -> None:
            nonlocal interrupts
            interrupts += 1
            self.stop.set()
            if interrupts == 1:
                print(
                    f"\nstopping: finishing the {self.tally.unit} in flight (Ctrl-C again abandons them)",
                    file=sys.stderr,
                )
            else:
                for task in tasks:
                    task.cancel()

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, interrupted)
        try:
            self.draw(force=True)
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            self.draw(force=True)
            print(file=sys.stderr)
        return interrupts > 0


def client_for(url: str, concurrency: int, api_key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx.Timeout(600.0, connect=10.0)
    limits = httpx.Limits(max_connections=max(1, concurrency) + 1)
    return httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout, limits=limits)


def finish(run: Run[T, F], summary: str, left: int, interrupted: bool, resume_hint: str) -> int:
    """Print the failures, the summary and how to continue; the command's exit status."""
    for failure in run.failed[:SHOW_PROBLEMS]:
        print(f"failed: {failure}", file=sys.stderr)
    print(summary)
    if run.fatal:
        print(f"synth: {run.fatal}", file=sys.stderr)
        return 2
    if left:
        print(f"{left} {run.tally.unit} left; to continue: {resume_hint}", file=sys.stderr)
    if interrupted:
        return 130
    return 1 if run.failed else 0


def _summary(path: Path, journal_path: Path, version: str, tally: Tally, bad: int, left: int) -> str:
    return (
        f"{path}: {tally.done} queries synthesized, {tally.skipped} skipped (done before under this "
        f"pipeline version or repeated), {tally.failed} failed, {bad} bad lines"
        + (f", {left} not started" if left else "")
        + f"\n  accepted pairs: {tally.accepted} ({tally.new} new in the store, {tally.duplicates} "
        f"duplicates, {tally.spooled} spooled; {tally.cached} queries answered from the cache)"
        f"\n  elapsed: {tally.elapsed:.1f} s, {tally.rate:.2f} queries/s"
        f"\n  pipeline version: {version}\n  journal: {journal_path}"
    )


async def _synthesize(
    url: str,
    path: Path,
    journal_path: Path,
    items: list[QueryItem],
    bad: int,
    concurrency: int,
    limit: int | None,
    api_key: str | None,
    resume_hint: str,
) -> int:
    async with client_for(url, concurrency, api_key) as client:
        version = await pipeline_version(client, url)
        todo, skipped = journal.plan(items, journal.done_under(journal.read_journal(journal_path), version))
        chosen = todo if limit is None else todo[:limit]

        async def work(item: QueryItem) -> JournalEntry:
            return await synthesize_query(client, item, version)

        with journal.open_journal(journal_path) as handle:
            tally = Tally(total=len(chosen), skipped=skipped)
            run = Run(chosen, work, tally, handle, concurrency, name=lambda item: repr(item.query))
            interrupted = await run.run()
    left = len(todo) - tally.done - tally.failed
    summary = _summary(path, journal_path, version, tally, bad, left)
    return finish(run, summary, left, interrupted, resume_hint)


def run_synthesize(
    url: str,
    path: Path,
    journal_path: Path,
    num_rewrites: int,
    top_k: int,
    concurrency: int = 4,
    limit: int | None = None,
    api_key: str | None = None,
    resume_hint: str = "run the same command again",
) -> int:
    if concurrency < 1 or (limit is not None and limit < 0):
        raise InvalidInput("--concurrency must be at least 1 and --limit at least 0")
    found = read_queries(path, num_rewrites, top_k)
    for problem in found.problems[:SHOW_PROBLEMS]:
        print(f"{path}: {problem}", file=sys.stderr)
    if len(found.problems) > SHOW_PROBLEMS:
        print(f"{path}: ... {len(found.problems) - SHOW_PROBLEMS} more problems", file=sys.stderr)
    if not found.items:
        raise InvalidInput(f"{path}: no queries to synthesize ({len(found.problems)} bad lines)")
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"--url must be an http:// or https:// address, not {url!r}")
    return asyncio.run(
        _synthesize(
            url,
            path,
            journal_path,
            found.items,
            len(found.problems),
            concurrency,
            limit,
            api_key,
            resume_hint,
        )
    )
