"""Product catalogs from CSV or JSONL: validated with line numbers, never silently wrong."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.core.errors import InvalidInput
from services.core.text import clean, product_text

# Accepted column names for each field (first match wins), so common exports load as they are.
COLUMNS = {
    "id": ("id", "product_id", "product_uid", "sku"),
    "title": ("title", "product_title", "name", "product_name"),
    "description": ("description", "product_description"),
    "category": ("category", "product_class", "category_hierarchy"),
    "brand": ("brand",),
}
MAX_FIELD_CHARS = {"id": 128, "title": 512, "description": 2000, "category": 256, "brand": 128}
MAX_REPORTED_ERRORS = 10


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    title: str
    description: str = ""
    category: str = ""
    brand: str = ""

    def text(self) -> str:
        return product_text(self.title, self.brand, self.category)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """(line number, raw row) for CSV (header on line 1) or JSONL; UTF-8 errors name the line."""
    with path.open("rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InvalidInput(f"{path}: line {line}: not valid UTF-8") from None
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        for number, line_text in enumerate(text.splitlines(), start=1):
            if not line_text.strip():
                continue
            try:
                row = json.loads(line_text)
            except json.JSONDecodeError as error:
                raise InvalidInput(f"{path}: line {number}: invalid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise InvalidInput(f"{path}: line {number}: expected a JSON object")
            yield number, row
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            yield reader.line_num, dict(row)


def _pick(row: dict[str, object], field: str, columns: dict[str, str | None]) -> str:
    column = columns[field]
    value = row.get(column) if column else None
    return clean(str(value)) if value is not None else ""


@dataclass(frozen=True)
class BadRow:
    line: int
    kind: str  # "empty title", "empty id", "duplicate id", "title longer than 512 characters", ...
    detail: str


def read_catalog(path: Path) -> tuple[list[Product], list[BadRow]]:
    """The valid products and every bad row; a file without an id or title column is an error."""
    if not path.is_file():
        raise InvalidInput(f"catalog {path} does not exist")
    products: list[Product] = []
    seen: dict[str, int] = {}
    bad: list[BadRow] = []
    columns: dict[str, str | None] | None = None
    for number, row in _rows(path):
        if columns is None:
            keys = {str(k).strip().lower(): str(k) for k in row}
            columns = {f: next((keys[c] for c in names if c in keys), None) for f, names in COLUMNS.items()}
            missing = [f for f in ("id", "title") if columns[f] is None]
            if missing:
                raise InvalidInput(
                    f"{path}: no {' or '.join(missing)} column; accepted names: "
                    + "; ".join(f"{f}: {', '.join(COLUMNS[f])}" for f in missing)
                )
        values = {field: _pick(row, field, columns) for field in COLUMNS}
        problem = next(((f"empty {f}", f"empty {f}") for f in ("id", "title") if not values[f]), None)
        problem = problem or next(
            (
                (f"{f} too long", f"{f} longer than {n} characters")
                for f, n in MAX_FIELD_CHARS.items()
                if len(values[f]) > n
            ),
            None,
        )
        if problem is None and values["id"] in seen:
            problem = ("duplicate id", f"duplicate id {values['id']!r} (first on line {seen[values['id']]})")
        if problem:
            bad.append(BadRow(number, *problem))
            continue
        seen[values["id"]] = number
        products.append(Product(**values))
    return products, bad


def load_catalog(path: Path) -> list[Product]:
    """Read and validate a catalog; raise InvalidInput listing the first problems by line."""
    products, bad = read_catalog(path)
    if bad:
        errors = [f"line {row.line}: {row.detail}" for row in bad]
        shown = "\n  ".join(errors[:MAX_REPORTED_ERRORS])
        more = (
            f"\n  ... and {len(errors) - MAX_REPORTED_ERRORS} more"
            if len(errors) > MAX_REPORTED_ERRORS
            else ""
        )
        raise InvalidInput(f"{path}: {len(errors)} bad rows:\n  {shown}{more}")
    if not products:
        raise InvalidInput(f"{path}: no products")
    return products
