"""`synth enqueue FILE`: queue a query log for the continuous-synthesis workers, through the gateway.

Accepted files: JSON Lines (objects with "query" and optional "num_rewrites"/"top_k", or bare strings),
CSV/TSV with a header holding a `query` (or `search_term`) column, or plain text with one query per
line. Bad lines are reported with their line numbers and skipped (or, with --strict, nothing is queued).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import ValidationError

from services.core.errors import InvalidInput
from services.pipeline.models import QueryItem

QUERY_COLUMNS = ("query", "search_term")
MAX_RETRIES = 5


@dataclass
class QueryFile:
    items: list[QueryItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _item(raw: object, defaults: dict[str, int]) -> QueryItem:
    fields = {"query": raw} if isinstance(raw, str) else raw
    if not isinstance(fields, dict):
        raise ValueError("expected a JSON object or string")
    return QueryItem.model_validate({**defaults, **fields})


def _problem(line: int, error: Exception) -> str:
    if isinstance(error, ValidationError):
        message = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in error.errors())
    else:
        message = str(error)
    return f"line {line}: {message}"


def read_queries(path: Path, num_rewrites: int, top_k: int) -> QueryFile:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}") from None
    defaults = {"num_rewrites": num_rewrites, "top_k": top_k}
    found = QueryFile()
    lines: list[tuple[int, str]] = []
    for number, chunk in enumerate(raw.splitlines(), start=1):
        try:
            lines.append((number, chunk.decode("utf-8")))
        except UnicodeDecodeError:
            found.problems.append(f"line {number}: not valid UTF-8")
    suffix = path.suffix.lower()
    if suffix in {".csv", ".tsv"}:
        rows = _table_rows(path, lines, "\t" if suffix == ".tsv" else ",")
    elif suffix in {".jsonl", ".ndjson"}:
        rows = _json_rows(lines)
    else:
        rows = [(n, text) for n, text in lines if text.strip()]
    for number, value in rows:
        try:
            if isinstance(value, Exception):
                raise value
            found.items.append(_item(value, defaults))
        except (ValueError, ValidationError) as error:
            found.problems.append(_problem(number, error))
    return found


def _json_rows(lines: list[tuple[int, str]]) -> list[tuple[int, object]]:
    rows: list[tuple[int, object]] = []
    for number, text in lines:
        if not text.strip():
            continue
        try:
            rows.append((number, json.loads(text)))
        except json.JSONDecodeError as error:
            rows.append((number, ValueError(f"not JSON ({error.msg})")))
    return rows


def _table_rows(path: Path, lines: list[tuple[int, str]], delimiter: str) -> list[tuple[int, object]]:
    if not lines:
        return []
    header_line, header = lines[0]
    columns = next(csv.reader([header], delimiter=delimiter))
    names = [c.strip().lower() for c in columns]
    column = next((names.index(c) for c in QUERY_COLUMNS if c in names), None)
    if column is None:
        raise InvalidInput(f"{path}: line {header_line}: no query column (expected one of {QUERY_COLUMNS})")
    rows: list[tuple[int, object]] = []
    for number, text in lines[1:]:
        if not text.strip():
            continue
        cells = next(csv.reader(io.StringIO(text), delimiter=delimiter))
        if column >= len(cells):
            rows.append((number, ValueError(f"{len(cells)} columns, the query is column {column + 1}")))
        else:
            rows.append((number, cells[column]))
    return rows


def _post(client: httpx.Client, batch: list[QueryItem]) -> list[str]:
    body = {"queries": [item.model_dump() for item in batch]}
    for attempt in range(MAX_RETRIES):
        response = client.post("/v1/queue", json=body)
        if response.status_code == 202:
            ids: list[str] = response.json()["ids"]
            return ids
        if response.status_code not in (429, 503) or attempt == MAX_RETRIES - 1:
            raise InvalidInput(f"the gateway refused a batch: {response.status_code} {response.text}")
        time.sleep(float(response.headers.get("retry-after", "2")))
    raise AssertionError("unreachable")


def run_enqueue(
    url: str,
    path: Path,
    num_rewrites: int,
    top_k: int,
    batch: int,
    strict: bool,
    api_key: str | None = None,
    show_problems: int = 20,
) -> int:
    found = read_queries(path, num_rewrites, top_k)
    for problem in found.problems[:show_problems]:
        print(f"{path}: {problem}", file=sys.stderr)
    if len(found.problems) > show_problems:
        print(f"{path}: ... {len(found.problems) - show_problems} more problems", file=sys.stderr)
    if found.problems and strict:
        print(f"{len(found.problems)} bad lines; nothing queued (--strict)", file=sys.stderr)
        return 2
    queued = 0
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        with httpx.Client(base_url=url.rstrip("/"), timeout=60, headers=headers) as client:
            for start in range(0, len(found.items), batch):
                queued += len(_post(client, found.items[start : start + batch]))
                print(f"\rqueued {queued}/{len(found.items)}", end="", file=sys.stderr, flush=True)
    except (httpx.HTTPError, InvalidInput) as error:
        reason = error if isinstance(error, InvalidInput) else f"cannot reach the gateway at {url}: {error}"
        print(f"\n{reason}; {queued} queries were queued before it", file=sys.stderr)
        return 2
    finally:
        if queued:
            print(file=sys.stderr)
    print(f"queued {queued} queries from {path} ({len(found.problems)} bad lines skipped)")
    return 0
