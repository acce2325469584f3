"""The gateway as its users meet it, on the real system: SSE stream, batch, the debugging page in
headless Chromium, and the OpenAPI spec fuzzed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.core.parameters import ParameterLocation

from services.cli.system import LocalSystem

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def api(live_system: LocalSystem) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_system.gateway_url, timeout=300) as client:
        yield client


def _events(api: httpx.Client, body: dict) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []
    with api.stream("POST", "/v1/synthesize/stream", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events


def test_the_stream_sends_each_stage_in_order_and_the_result_matches_them(api: httpx.Client) -> None:
    body = {"query": "patio umbrella with solar lights", "num_rewrites": 3, "top_k": 10, "use_cache": False}
    events = _events(api, body)
    names = [name for name, _ in events]
    assert names == ["started", "rewrites", "retrieval", "judgments", "result", "stored"]
    stages = dict(events)
    assert stages["started"] == stages["started"] | {"query": body["query"], "cached": False}
    result = stages["result"]
    # The result holds the same candidates, ranked by reward.
    assert sorted(c["text"] for c in stages["rewrites"]["candidates"]) == sorted(
        r["text"] for r in result["rewrites"]
    )
    assert [r["rank"] for r in result["rewrites"]] == list(range(1, len(result["rewrites"]) + 1))
    searches = stages["retrieval"]["searches"]
    assert searches[0]["text"] == body["query"] and len(searches[0]["hits"]) == 10
    assert len(searches) == 1 + sum(c["accepted"] for c in stages["rewrites"]["candidates"])
    assert stages["judgments"]["pairs"] == result["pairs"]
    stored = stages["stored"]
    assert stored["new"] + stored["duplicates"] == result["accepted_count"] and stored["spooled"] == 0

    again = _events(api, body | {"use_cache": True})
    assert [name for name, _ in again] == ["started", "result"]
    assert again[0][1]["cached"] is True and again[1][1]["pairs"] == result["pairs"]


def test_a_batch_answers_every_query_and_reports_bad_ones(api: httpx.Client) -> None:
    queries = [
        {"query": "patio umbrella with solar lights", "num_rewrites": 3, "top_k": 10},  # cached above
        {"query": "   "},
        {"query": "velvet accent chair", "num_rewrites": 2, "top_k": 5},
    ]
    response = api.post(
        "/v1/synthesize:batch", json={"queries": queries}, headers={"X-Request-ID": "batch-1"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "batch-1"
    reply = response.json()
    assert [r["status"] for r in reply["results"]] == [200, 422, 200]
    assert reply["results"][0]["result"]["cached"] is True
    assert reply["results"][2]["result"]["query"] == "velvet accent chair"
    assert "empty" in json.dumps(reply["results"][1]["error"])
    assert (reply["succeeded"], reply["failed"]) == (2, 1)
    too_many = api.post("/v1/synthesize:batch", json={"queries": [{"query": "a"}] * 5})
    assert too_many.status_code == 422 and "the limit is 4" in too_many.text


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


STAGE_ORDER = """() => {
  window.stageOrder = [];
  for (const section of document.querySelectorAll("section")) {
    new MutationObserver(() => {
      if (section.dataset.state === "done") window.stageOrder.push(section.id);
    }).observe(section, { attributes: true, attributeFilter: ["data-state"] });
  }
}"""


def test_the_debug_page_shows_each_stage_as_it_arrives(
    browser: object, live_system: LocalSystem, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})  # type: ignore[attr-defined]
    page.goto(f"{live_system.gateway_url}/debug")
    page.evaluate(STAGE_ORDER)
    page.fill("#query", "cordless drill for deck screws")
    page.fill("#num_rewrites", "3")
    page.fill("#top_k", "10")
    page.press("#query", "Enter")
    page.wait_for_selector("#stage-result[data-state=done]", timeout=180_000)

    assert page.evaluate("window.stageOrder") == [
        "stage-rewrites",
        "stage-retrieval",
        "stage-judgments",
        "stage-result",
    ]
    assert page.locator("#rewrites tr").count() >= 1
    assert page.locator("#searches .search").count() >= 1
    assert page.locator("#pairs tr").count() >= 10
    assert page.locator("#pairs td.yes, #pairs td.no").count() == page.locator("#pairs tr").count()
    assert "accepted of" in page.inner_text("#result")
    page.wait_for_selector("#result >> text=training store:")
    assert page.get_attribute("#summary", "data-cached") == "false"
    assert "q=cordless+drill+for+deck+screws" in page.url and "n=3" in page.url
    shot = tmp_path / "debug-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

    # The permalink replays the query: now a cache hit, every section filled from the result.
    permalink = page.get_attribute("#permalink", "href")
    page.goto(permalink)
    page.wait_for_selector("#stage-result[data-state=done]", timeout=60_000)
    assert page.get_attribute("#summary", "data-cached") == "true"
    assert page.input_value("#query") == "cordless drill for deck screws"
    assert page.locator("#pairs tr").count() >= 10
    page.close()


def test_the_debug_page_shows_refusals_from_the_api(browser: object, live_system: LocalSystem) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"{live_system.gateway_url}/debug?q=drill&n=17")
    page.wait_for_selector("#error", state="visible", timeout=30_000)
    assert "422" in page.inner_text("#error") and "num_rewrites" in page.inner_text("#error")
    page.close()


FUZZ_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
# A 503 is /readyz's documented answer while a backend is busy or down (its body is still checked
# against the schema): a loaded rewriter failing its health probe during fuzzing is not a server error.
PROBE_CHECKS = [check for check in FUZZ_CHECKS if check is not checks.not_a_server_error]


@schemathesis.check
def invalid_batch_items_fail_one_by_one(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A batch is validated item by item (one bad query must not cost the others their answers), so a
    body whose items break the schema may get a 200: then at least one item must carry its own error."""
    body_is_invalid = case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY)
    if response.status_code == 200 and body_is_invalid:  # a mutated header alone may be ignored
        body = response.json()
        assert body["failed"] >= 1, f"schema-violating batch answered with no failed item: {body}"
    return None


# Negative batches: the rest of the checks, and per-item rejection in place of whole-request rejection.
BATCH_NEGATIVE_CHECKS = [
    *(check for check in FUZZ_CHECKS if check is not checks.negative_data_rejection),
    invalid_batch_items_fail_one_by_one,
]


# A valid product asks the LLM for up to 4 x 8 queries and synthesizes every kept one (minutes on these
# cores): its valid bodies are exercised by test_product_queries_cli.py, its invalid ones fuzzed here.
COSTLY = {"/v1/synthesize:product"}


def test_fuzzed_requests_get_no_5xx_and_match_the_schema(live_system: LocalSystem) -> None:
    """Every operation of the OpenAPI spec, with schema-valid and schema-invalid requests (a few each:
    a valid synthesis costs seconds of CPU). Failures of all operations are collected, then reported."""
    schema = schemathesis.openapi.from_url(f"{live_system.gateway_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/v1/synthesize",
        "/v1/synthesize/stream",
        "/v1/synthesize:batch",
    }
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.POSITIVE and operation.path in COSTLY:
                continue

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=5,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: schemathesis.Case) -> None:
                chosen = PROBE_CHECKS if case.operation.path == "/readyz" else FUZZ_CHECKS
                if (
                    case.operation.path == "/v1/synthesize:batch"
                    and case.meta
                    and case.meta.generation.mode.is_negative
                ):
                    chosen = BATCH_NEGATIVE_CHECKS
                case.call_and_validate(timeout=300, checks=chosen)

            try:
                fuzz()
            except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET"
            except Exception as error:  # collected: one broken operation must not hide the others
                failures.append(f"{operation.label} ({mode.value}): {error}")
    assert not failures, "\n\n".join(failures)
