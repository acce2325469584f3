"""Bad input is refused with a 4xx and a message before any backend is called.

The app points at ports where nothing listens: a request that got past validation would fail
with 5xx, so every 4xx here proves validation happened at the edge.
"""

import json
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from fastapi.testclient import TestClient

from services.core.redis_server import free_port
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.pipeline.clients import BackendError
from services.pipeline.config import PipelineSettings
from services.pipeline.models import RewritesStage
from services.store.config import StoreSettings
from services.worker.config import QueueSettings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    nowhere = f"127.0.0.1:{free_port()}"
    app = create_app(
        GatewaySettings(redis_url=f"redis://{nowhere}/0", max_body_bytes=64 * 1024),
        PipelineSettings(rewriter_target=nowhere, retriever_target=nowhere, judge_target=nowhere),
        StoreSettings(state_dir=tmp_path_factory.mktemp("state")),
        QueueSettings(max_enqueue=3),
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


BAD_BODIES = [
    ({}, "query"),
    ({"query": ""}, "empty"),
    ({"query": "   \t\n "}, "empty"),
    ({"query": "x" * 10_000}, "at most 512"),
    ({"query": 42}, "valid string"),
    ({"query": ["drill"]}, "valid string"),
    ({"query": "drill", "top_k": 0}, "greater than or equal to 1"),
    ({"query": "drill", "top_k": 100000}, "less than or equal to 200"),
    ({"query": "drill", "top_k": "20"}, "valid integer"),
    ({"query": "drill", "num_rewrites": 17}, "less than or equal to 16"),
    ({"query": "drill", "num_rewrites": 2.5}, "valid integer"),
    ({"query": "drill", "use_cache": "yes"}, "valid boolean"),
    ({"query": "drill", "colour": "red"}, "Extra inputs are not permitted"),
    (["drill"], "valid dictionary"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_bad_json_bodies_get_422_with_a_message(client: TestClient, body: object, message: str) -> None:
    response = client.post("/v1/synthesize", json=body)
    assert response.status_code == 422, response.text
    assert message in response.text
    assert "x" * 600 not in response.text  # the input is not echoed back


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"query": "dri', b'{"query": "\xff\xfe drill"}', b""],
    ids=["not-json", "truncated", "invalid-utf8", "empty"],
)
def test_unparseable_bodies_get_4xx(client: TestClient, raw: bytes) -> None:
    response = client.post("/v1/synthesize", content=raw, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]


def test_oversized_body_gets_413(client: TestClient) -> None:
    response = client.post("/v1/synthesize", json={"query": "d" * 100_000})
    assert response.status_code == 413
    assert "bytes" in response.json()["detail"]


def test_a_chunked_body_over_the_limit_gets_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "'
        for _ in range(100):
            yield b"d" * 1000
        yield b'"}'

    response = client.post("/v1/synthesize", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text  # FastAPI alone answers 400 here
    assert "over 65536 bytes" in response.json()["detail"]
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_json_under_another_content_type_gets_415(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/synthesize", content=b'{"query": "drill"}', headers=headers)
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["detail"]
    assert client.post("/v1/queue", content=b'{"queries": []}', headers=headers).status_code == 415


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.api+json"])
def test_json_media_types_with_parameters_or_suffixes_are_read(client: TestClient, content_type: str) -> None:
    response = client.post("/v1/synthesize", content=b'{"query": ""}', headers={"content-type": content_type})
    assert response.status_code == 422 and "empty" in response.text


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/queue", "GET, POST"),
        ("PUT", "/v1/queue", "GET, POST"),
        ("GET", "/v1/synthesize", "POST"),
    ],
)
def test_405_lists_every_allowed_method(client: TestClient, method: str, path: str, allowed: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["detail"] == "Method Not Allowed"


def test_openapi_states_the_limits_the_server_enforces(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    models = spec["components"]["schemas"]
    query = models["SynthesizeRequest"]["properties"]["query"]
    assert (query["minLength"], query["maxLength"], query["pattern"]) == (1, 512, r"\S")
    assert models["BatchRequest"]["properties"]["queries"]["maxItems"] == 32
    assert models["EnqueueRequest"]["properties"]["queries"]["maxItems"] == 3  # the fixture's max_enqueue
    assert models["EnqueueRequest"]["properties"]["queries"]["minItems"] == 1
    for status in ("408", "413", "415", "422"):
        assert status in spec["paths"]["/v1/synthesize"]["post"]["responses"]
        assert status in spec["paths"]["/v1/queue"]["post"]["responses"]


def test_unreachable_backends_give_503_with_retry_after_not_a_stack_trace(client: TestClient) -> None:
    response = client.post("/v1/synthesize", json={"query": "cordless drill"})
    assert response.status_code == 503
    assert "Traceback" not in response.text
    assert "UNAVAILABLE" in response.json()["detail"]
    assert int(response.headers["retry-after"]) > 0


BAD_QUEUE_BODIES = [
    ({}, "queries"),
    ({"queries": []}, "at least 1"),
    ({"queries": [{"query": "drill"}, {"query": " "}]}, "empty"),
    ({"queries": [{"query": "drill", "top_k": 0}]}, "greater than or equal to 1"),
    ({"queries": ["drill"]}, "valid dictionary"),
    ({"queries": [{"query": "a"}] * 4}, "the limit is 3"),
    ({"queries": [{"query": "a"}], "priority": 1}, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("body", "message"), BAD_QUEUE_BODIES)
def test_bad_queue_bodies_get_422_and_queue_nothing(client: TestClient, body: object, message: str) -> None:
    response = client.post("/v1/queue", json=body)
    assert response.status_code == 422, response.text
    assert message in response.text


def test_queue_without_redis_is_503_with_retry_after(client: TestClient) -> None:
    response = client.post("/v1/queue", json={"queries": [{"query": "deck over"}]})
    assert response.status_code == 503
    assert "redis unavailable" in response.json()["detail"]
    assert int(response.headers["retry-after"]) > 0


def test_readyz_is_503_when_nothing_answers_and_healthz_is_200(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"rewriter": False, "retriever": False, "judge": False, "redis": False}
    assert ready.json()["spooled_batches"] == 0
    assert ready.json()["pipeline_version"] is None  # no backend can describe itself
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["redis"]["reachable"] is False
    assert ready.json()["spool"] == {"batches": 0, "oldest_age_s": None}
    assert [reason.split(" (")[0] for reason in ready.json()["degraded"]] == ["redis unreachable"]


def test_openapi_documents_the_synthesis_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/v1/synthesize", "/v1/queue"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_a_stream_that_cannot_start_is_a_plain_503_not_an_event_stream(client: TestClient) -> None:
    response = client.post("/v1/synthesize/stream", json={"query": "cordless drill"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["retry-after"]) > 0
    assert client.post("/v1/synthesize/stream", json={"query": " "}).status_code == 422


def test_a_batch_answers_each_query_with_its_own_status(client: TestClient) -> None:
    body = {"queries": [{"query": "cordless drill"}, {"query": ""}, {"query": "drill", "top_k": 0}, "drill"]}
    response = client.post("/v1/synthesize:batch", json=body)
    assert response.status_code == 422  # a non-object item is a malformed request, not a bad query
    response = client.post("/v1/synthesize:batch", json={"queries": body["queries"][:3]})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert [r["index"] for r in reply["results"]] == [0, 1, 2]
    assert [r["status"] for r in reply["results"]] == [503, 422, 422]
    assert "UNAVAILABLE" in reply["results"][0]["error"]
    assert "empty" in str(reply["results"][1]["error"])
    assert "greater than or equal to 1" in str(reply["results"][2]["error"])
    assert reply["succeeded"] == 0 and reply["failed"] == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"queries": []}, "at least 1"),
        ({"queries": [{"query": "a"}] * 33}, "the limit is 32"),
        ({"queries": [{"query": "a"}], "parallel": 2}, "Extra inputs are not permitted"),
    ],
)
def test_bad_batches_get_422(client: TestClient, body: object, message: str) -> None:
    response = client.post("/v1/synthesize:batch", json=body)
    assert response.status_code == 422, response.text
    assert message in response.text


def test_a_failure_after_the_stream_started_ends_it_with_an_error_event(client: TestClient) -> None:
    """Wiring only: the pipeline is swapped for one whose judge fails after the rewrites stage."""
    pipeline = client.app.state.resources.pipeline  # type: ignore[attr-defined]

    async def version(allow_stale: bool = False) -> str:
        return "test-version"

    async def stages(request: object) -> AsyncIterator[object]:
        yield RewritesStage(candidates=[], dropped_candidates=[])
        raise BackendError("judge", grpc.StatusCode.UNAVAILABLE, "connection refused")

    original = pipeline.version, pipeline.stages
    pipeline.version, pipeline.stages = version, stages
    try:
        response = client.post("/v1/synthesize/stream", json={"query": "drill", "use_cache": False})
    finally:
        pipeline.version, pipeline.stages = original
    assert response.status_code == 200
    blocks = [b for b in response.text.split("\n\n") if b]
    assert [b.split("\n")[0] for b in blocks] == ["event: started", "event: rewrites", "event: error"]
    error = json.loads(blocks[-1].split("data: ", 1)[1])
    assert error["status"] == 503 and "judge failed: UNAVAILABLE" in error["detail"]


PRODUCT = {"product_id": "DEMO-000001", "title": "Holdline 8 in. T-Bar Pull"}
BAD_PRODUCT_BODIES = [
    ({"title": "Pull"}, "product_id"),
    ({"product_id": "D1"}, "title"),
    ({**PRODUCT, "title": "  \t"}, "must not be empty"),
    ({**PRODUCT, "title": "x" * 600}, "at most 512"),
    ({**PRODUCT, "product_id": "has space"}, "should match pattern"),
    ({**PRODUCT, "product_id": ""}, "at least 1 character"),
    ({**PRODUCT, "description": "d" * 2001}, "at most 2000"),
    ({**PRODUCT, "styles": []}, "at least 1 item"),
    ({**PRODUCT, "styles": ["keywords", "keywords"]}, "a style is listed twice"),
    ({**PRODUCT, "styles": ["poems"]}, "'keywords', 'attributes', 'need' or 'misspelled'"),
    ({**PRODUCT, "num_queries": 9}, "less than or equal to 8"),
    ({**PRODUCT, "num_queries": 0}, "greater than or equal to 1"),
    ({**PRODUCT, "top_k": 201}, "less than or equal to 200"),
    ({**PRODUCT, "seed": -1}, "greater than or equal to 0"),
    ({**PRODUCT, "colour": "red"}, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("body", "message"), BAD_PRODUCT_BODIES)
def test_bad_product_bodies_get_422_with_a_message(client: TestClient, body: object, message: str) -> None:
    response = client.post("/v1/synthesize:product", json=body)
    assert response.status_code == 422, response.text
    assert message in response.text
    assert "x" * 600 not in response.text


def test_a_product_with_unreachable_backends_is_503_with_retry_after(client: TestClient) -> None:
    response = client.post("/v1/synthesize:product", json=PRODUCT)
    assert response.status_code == 503
    assert "UNAVAILABLE" in response.json()["detail"] and "Traceback" not in response.text
    assert int(response.headers["retry-after"]) > 0
    assert "/v1/synthesize:product" in client.get("/openapi.json").json()["paths"]
