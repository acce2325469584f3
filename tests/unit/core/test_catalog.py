import json
from pathlib import Path

import pytest

from services.core.catalog import load_catalog
from services.core.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_csv_with_optional_columns_and_quoted_newlines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.csv",
        'id,title,description,brand\nA1,Cordless Drill,"two\nlines",Voltra\nA2,  Deck   Screws ,,\n',
    )
    products = load_catalog(path)
    assert [p.id for p in products] == ["A1", "A2"]
    assert products[0].description == "two lines"
    assert products[1].title == "Deck Screws"
    assert products[0].text() == "Cordless Drill. brand: Voltra"


def test_jsonl_and_alternative_column_names(tmp_path: Path) -> None:
    rows = [
        {"product_uid": 7, "product_title": "Angle bracket"},
        {"product_uid": 8, "product_title": "Hinge"},
    ]
    path = write(tmp_path, "c.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert [(p.id, p.title) for p in load_catalog(path)] == [("7", "Angle bracket"), ("8", "Hinge")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("c.csv", "id,name_of_thing\n1,x\n", "no title column"),
        ("c.csv", "id,title\n1,Drill\n1,Saw\n", "line 3: duplicate id '1' (first on line 2)"),
        ("c.csv", "id,title\n1,\n", "line 2: empty title"),
        ("c.csv", b"id,title\n1,Drill\n2,S\xffw\n", "line 3: not valid UTF-8"),
        ("c.jsonl", '{"id": 1, "title": "a"}\n{oops\n', "line 2: invalid JSON"),
        ("c.jsonl", '["id", "title"]\n', "line 1: expected a JSON object"),
        ("c.csv", "id,title\n", "no products"),
    ],
)
def test_bad_files_are_refused_with_line_numbers(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_catalog(write(tmp_path, name, content))


def test_bundled_demo_catalog_loads() -> None:
    products = load_catalog(ROOT / "data" / "demo" / "catalog.csv")
    assert 500 <= len(products) <= 5000
    assert any("drill" in p.title.lower() for p in products)
