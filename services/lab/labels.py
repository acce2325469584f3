"""Graded relevance labels (ESCI, WANDS, numeric scales) read from CSV/TSV/JSONL, checked row by row.

Each row becomes a LabelledPair: the query, the product text the judge would read at serving time
(title, brand and category, as services.core.text.product_text builds it), a grade in [0, 1] and a
binary `relevant` used for thresholds and metrics. Bad rows are collected with their line numbers;
the caller decides to skip them or fail.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from services.core.catalog import Product, load_catalog
from services.core.errors import InvalidInput
from services.core.text import clean, normalize_query, product_text

QUERY_COLUMNS = ("query", "search_term", "query_text", "keywords")
ID_COLUMNS = ("product_id", "product_uid", "sku", "id")
TITLE_COLUMNS = ("product_title", "title", "product_name", "name")
DESCRIPTION_COLUMNS = ("product_description", "description")
LABEL_COLUMNS = ("label", "esci_label", "relevance", "median_relevance", "grade", "rating", "score")

ESCI = {"E": 1.0, "S": 2 / 3, "C": 1 / 3, "I": 0.0}
ESCI_NAMES = ESCI | {"EXACT": 1.0, "SUBSTITUTE": 2 / 3, "COMPLEMENT": 1 / 3, "IRRELEVANT": 0.0}
WANDS = {"exact": 1.0, "partial": 0.5, "irrelevant": 0.0}
# Default cut for `relevant` on the numeric scales the issue names: Home Depot's mean of 1-3 ratings
# (>= 2.33, i.e. at least two "highly/somewhat" votes) and CrowdFlower's median of 1-4 (>= 3).
NUMERIC_DEFAULT_CUT = {(1.0, 3.0): 2.33, (1.0, 4.0): 3.0}
MAX_QUERY_CHARS = 512
MAX_TITLE_CHARS = 512
DESCRIPTION_CHARS = 300  # what --description adds to the text; the cross-encoder reads ~64-128 tokens
MAX_REPORTED_LINES = 10
PROBLEMS = (
    "invalid UTF-8",
    "empty query",
    "query too long",
    "empty title",
    "title too long",
    "unknown label",
    "unknown product id",
    "duplicate pair",
)


@dataclass(frozen=True)
class Scale:
    """How raw labels map to grades: kind esci, wands or numeric (lo..hi), and what counts as relevant."""

    kind: str
    lo: float = 0.0
    hi: float = 1.0
    relevant_at: float = 1.0  # numeric: raw value; esci/wands: grade
    name: str = ""

    @classmethod
    def parse(cls, spec: str, relevant_at: float | None = None, esci_substitutes: bool = False) -> Scale:
        """`esci`, `wands` or `LO-HI` (e.g. 1-3, 1-4)."""
        lowered = spec.strip().lower()
        if lowered == "esci":
            return cls("esci", relevant_at=ESCI["S"] if esci_substitutes else 1.0, name="esci")
        if lowered == "wands":
            return cls("wands", relevant_at=1.0, name="wands")
        lo_text, sep, hi_text = lowered.partition("-")
        try:
            lo, hi = float(lo_text), float(hi_text)
        except ValueError:
            raise InvalidInput(f"unknown label scale {spec!r}; use esci, wands or LO-HI (1-3, 1-4)") from None
        if not sep or hi <= lo:
            raise InvalidInput(f"label scale {spec!r}: expected LO-HI with LO < HI")
        cut = relevant_at if relevant_at is not None else NUMERIC_DEFAULT_CUT.get((lo, hi))
        if cut is None:
            cut = round(lo + (hi - lo) * 2 / 3, 2)
        if not lo <= cut <= hi:
            raise InvalidInput(f"--relevant-at {cut} is outside the scale {spec}")
        return cls("numeric", lo, hi, cut, name=f"{lo:g}-{hi:g}")

    def grade(self, raw: str) -> tuple[float, bool] | None:
        """(grade in [0, 1], relevant) or None for a label this scale does not know."""
        text = raw.strip()
        if self.kind in {"esci", "wands"}:
            names = ESCI_NAMES if self.kind == "esci" else WANDS
            value = names.get(text.upper() if self.kind == "esci" else text.lower())
            return None if value is None else (value, value >= self.relevant_at - 1e-9)
        try:
            number = float(text)
        except ValueError:
            return None
        if not self.lo <= number <= self.hi:
            return None
        return (number - self.lo) / (self.hi - self.lo), number >= self.relevant_at - 1e-9


@dataclass(frozen=True, slots=True)
class LabelledPair:
    line: int
    query: str
    product: str  # the product id, or the title for inline rows
    text: str
    label: str  # the raw label, for per-grade reports
    grade: float
    relevant: bool


@dataclass
class LabelSet:
    path: Path
    scale: Scale
    pairs: list[LabelledPair]
    rows: int
    problems: dict[str, list[int]] = field(default_factory=dict)
    sha256: str = ""
    catalog: dict[str, str] | None = None  # {file, sha256} of the catalog product ids were joined to

    @property
    def skipped(self) -> int:
        return sum(len(lines) for lines in self.problems.values())

    def provenance(self) -> dict[str, object]:
        """Which labels a model or report came from, as manifests and reports record it."""
        return {
            "file": self.path.name,
            "sha256": self.sha256,
            "scale": self.scale.name,
            "relevant_at": self.scale.relevant_at,
            "pairs": len(self.pairs),
            "skipped_rows": self.skipped,
        } | ({"catalog": self.catalog} if self.catalog else {})

    def report(self) -> str:
        head = (
            f"{self.path.name}: {self.rows} rows, {len(self.pairs)} pairs kept "
            f"({sum(p.relevant for p in self.pairs)} relevant), scale {self.scale.name}"
        )
        return "\n  ".join([head, *problem_lines(self.problems)])


def problem_lines(problems: dict[str, list[int]]) -> list[str]:
    lines = []
    for kind, numbers in problems.items():
        shown = ", ".join(str(n) for n in numbers[:MAX_REPORTED_LINES])
        more = f" and {len(numbers) - MAX_REPORTED_LINES} more" if len(numbers) > MAX_REPORTED_LINES else ""
        lines.append(f"{len(numbers)} rows with {kind}: lines {shown}{more}")
    return lines


def _records(path: Path, raw: bytes) -> Iterator[tuple[int, dict[str, str], bool]]:
    """(first line of the record, row, row had invalid UTF-8). Bad bytes survive as surrogates so one
    broken row is reported by line instead of failing the file."""
    text = raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            bad = _has_surrogates(line)
            try:
                row = json.loads(line.encode("utf-8", errors="replace").decode("utf-8") if bad else line)
            except json.JSONDecodeError as error:
                raise InvalidInput(f"{path}: line {number}: invalid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise InvalidInput(f"{path}: line {number}: expected a JSON object")
            yield number, {str(k): "" if v is None else str(v) for k, v in row.items()}, bad
        return
    first = text.split("\n", 1)[0]
    delimiter = "\t" if path.suffix.lower() == ".tsv" or first.count("\t") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 2
    for row in reader:
        values = {str(k): v or "" for k, v in row.items() if k is not None}
        yield start, values, any(_has_surrogates(v) for v in values.values())
        start = reader.line_num + 1


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _column(keys: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((keys[name] for name in names if name in keys), None)


def detect_scale(label_column: str, values: list[str]) -> str:
    """esci, wands or a numeric scale from the column name and the values seen."""
    # The kind most values fit wins, so a few typos become "unknown label" rows, not a wrong scale.
    cleaned = [v.strip() for v in values if v.strip()]
    esci = sum(v.upper() in ESCI_NAMES for v in cleaned)
    wands = sum(v.lower() in WANDS for v in cleaned)
    numbers = []
    for value in cleaned:
        try:
            numbers.append(float(value))
        except ValueError:
            continue
    if max(esci, wands) > len(numbers):
        # Exact/Irrelevant alone fit both scales (with the same grades); Partial or E/S/C decide.
        return "esci" if esci > wands else "wands"
    if label_column == "relevance":
        return "1-3"  # Home Depot: mean of 1-3 ratings
    if label_column == "median_relevance":
        return "1-4"  # CrowdFlower: median of 1-4 ratings
    if numbers and min(numbers) >= 1 and max(numbers) <= 3:
        return "1-3"
    if numbers and min(numbers) >= 1 and max(numbers) <= 4:
        return "1-4"
    raise InvalidInput(f"cannot tell the label scale of column {label_column!r}; pass --scale")


def load_labels(
    path: Path,
    catalog: Path | None = None,
    scale: str = "auto",
    relevant_at: float | None = None,
    esci_substitutes: bool = False,
    on_error: str = "fail",
    description: bool = False,
) -> LabelSet:
    """Read a label file; with on_error="fail" any bad row raises InvalidInput naming the lines."""
    if on_error not in {"skip", "fail"}:
        raise InvalidInput(f"on_error must be skip or fail, not {on_error!r}")
    if not path.is_file():
        raise InvalidInput(f"label file {path} does not exist")
    raw = path.read_bytes()
    records = list(_records(path, raw))
    if not records:
        raise InvalidInput(f"{path}: no rows")
    keys = {k.strip().lower(): k for k in records[0][1]}
    query_col = _column(keys, QUERY_COLUMNS)
    label_col = _column(keys, LABEL_COLUMNS)
    title_col = _column(keys, TITLE_COLUMNS)
    description_col = _column(keys, DESCRIPTION_COLUMNS)
    id_col = None if title_col else _column(keys, ID_COLUMNS)
    missing = [
        name
        for name, col, accepted in (
            ("query", query_col, QUERY_COLUMNS),
            ("label", label_col, LABEL_COLUMNS),
            ("product", title_col or id_col, TITLE_COLUMNS + ID_COLUMNS),
        )
        if col is None
        for name in [f"{name} column (one of: {', '.join(accepted)})"]
    ]
    if missing:
        raise InvalidInput(f"{path}: no {'; no '.join(missing)}")
    assert query_col and label_col
    products: dict[str, Product] = {}
    joined: dict[str, str] | None = None
    if id_col:
        if catalog is None:
            raise InvalidInput(f"{path} names products by {id_col!r}: pass --catalog FILE to join them")
        products = {p.id: p for p in load_catalog(catalog)}
        joined = {"file": catalog.name, "sha256": hashlib.sha256(catalog.read_bytes()).hexdigest()}
    spec = (
        scale
        if scale != "auto"
        else detect_scale(label_col.strip().lower(), [r[label_col] for _, r, _ in records])
    )
    resolved = Scale.parse(spec, relevant_at, esci_substitutes)

    pairs: list[LabelledPair] = []
    problems: dict[str, list[int]] = {}
    seen: set[tuple[str, str]] = set()
    for line, row, bad_bytes in records:
        problem, pair = _pair(
            line,
            row,
            bad_bytes,
            query_col,
            label_col,
            title_col,
            description_col,
            id_col,
            products,
            resolved,
            description,
        )
        if pair is not None:
            key = (normalize_query(pair.query), pair.product.casefold())
            if key in seen:
                problem, pair = "duplicate pair", None
            else:
                seen.add(key)
        if problem:
            problems.setdefault(problem, []).append(line)
        elif pair is not None:
            pairs.append(pair)
    ordered = {kind: problems[kind] for kind in PROBLEMS if kind in problems}
    result = LabelSet(path, resolved, pairs, len(records), ordered, hashlib.sha256(raw).hexdigest(), joined)
    if ordered and on_error == "fail":
        raise InvalidInput(
            f"{path}: {result.skipped} bad rows (pass --on-error skip to drop them):\n  "
            + "\n  ".join(problem_lines(ordered))
        )
    if not pairs:
        raise InvalidInput(f"{path}: no usable rows\n  " + "\n  ".join(problem_lines(ordered)))
    return result


def _pair(
    line: int,
    row: dict[str, str],
    bad_bytes: bool,
    query_col: str,
    label_col: str,
    title_col: str | None,
    description_col: str | None,
    id_col: str | None,
    products: dict[str, Product],
    scale: Scale,
    with_description: bool,
) -> tuple[str | None, LabelledPair | None]:
    if bad_bytes:
        return "invalid UTF-8", None
    query = clean(row.get(query_col, ""))
    if not query:
        return "empty query", None
    if len(query) > MAX_QUERY_CHARS:
        return "query too long", None
    graded = scale.grade(row.get(label_col, ""))
    if graded is None:
        return "unknown label", None
    if id_col:
        product_id = clean(row.get(id_col, ""))
        found = products.get(product_id)
        if found is None:
            return "unknown product id", None
        key, text = product_id, found.text()
    else:
        assert title_col
        title = clean(row.get(title_col, ""))
        if not title:
            return "empty title", None
        if len(title) > MAX_TITLE_CHARS:
            return "title too long", None
        key, text = title, product_text(title)
        if with_description and description_col:
            extra = clean(row.get(description_col, ""))[:DESCRIPTION_CHARS]
            text = f"{text}. {extra}" if extra else text
    label = row.get(label_col, "").strip()
    return None, LabelledPair(line, query, key, text, label, graded[0], graded[1])


def split_by_query(
    pairs: list[LabelledPair], eval_fraction: float, seed: int
) -> tuple[list[LabelledPair], list[LabelledPair]]:
    """(train, eval): every pair of a query lands on the same side, decided by a seeded hash of the
    normalized query, so the split does not depend on row order and is the same on every machine."""
    if not 0 <= eval_fraction < 1:
        raise InvalidInput("the eval fraction must be in [0, 1)")
    train: list[LabelledPair] = []
    held: list[LabelledPair] = []
    for pair in pairs:
        (held if query_bucket(pair.query, seed) < eval_fraction else train).append(pair)
    return train, held


def query_bucket(query: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\x00{normalize_query(query)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
