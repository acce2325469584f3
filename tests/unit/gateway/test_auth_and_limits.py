"""API keys, per-key rate limits (real Redis), CORS and request ids on the gateway.

Backends point where nothing listens; GET /v1/queue needs only Redis, so a 200 there proves a request
got through auth and the limiter, and a 401/429 proves it was stopped before any work.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from services.core.errors import ConfigError
from services.core.redis_server import EmbeddedRedis, free_port
from services.gateway.app import create_app
from services.gateway.auth import entry, load_keys, new_key, parse_entries
from services.gateway.config import GatewaySettings
from services.pipeline.config import PipelineSettings
from services.store.config import StoreSettings
from services.worker.config import QueueSettings

KEY = new_key()
LIMITED_KEY = new_key()


def _client(redis_server: EmbeddedRedis, tmp_path: Path, **settings: object) -> TestClient:
    nowhere = f"127.0.0.1:{free_port()}"
    app = create_app(
        GatewaySettings(redis_url=redis_server.url, **settings),  # type: ignore[arg-type]
        PipelineSettings(rewriter_target=nowhere, retriever_target=nowhere, judge_target=nowhere),
        StoreSettings(state_dir=tmp_path),
        # Own queue keys: the status call must not see other tests' entries.
        QueueSettings(stream_key=f"test:{uuid.uuid4().hex}:queries"),
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def secured(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[TestClient]:
    # Unique names: the limiter's buckets live in the session's Redis.
    suffix = uuid.uuid4().hex[:8]
    keys = f"{entry('backend-' + suffix, KEY)},{entry('tiny-' + suffix, LIMITED_KEY, 3)}"
    with _client(redis_server, tmp_path, api_keys=keys, rate_limit_per_minute=1000) as client:
        yield client


def test_without_a_key_the_api_is_refused_but_health_and_metrics_are_open(secured: TestClient) -> None:
    for method, path, body in [
        ("GET", "/v1/queue", None),
        ("POST", "/v1/synthesize", {"query": "drill"}),
        ("POST", "/v1/synthesize/stream", {"query": "drill"}),
        ("POST", "/v1/synthesize:batch", {"queries": [{"query": "drill"}]}),
        ("POST", "/v1/queue", {"queries": [{"query": "drill"}]}),
    ]:
        response = secured.request(method, path, json=body)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "API key is required" in response.json()["detail"]
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/metrics").status_code == 200


def test_a_wrong_key_is_refused_and_a_right_one_passes_in_either_header(secured: TestClient) -> None:
    wrong = secured.get("/v1/queue", headers={"Authorization": f"Bearer {new_key()}"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown API key"
    assert secured.get("/v1/queue", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert secured.get("/v1/queue", headers={"X-API-Key": KEY}).status_code == 200
    metrics = secured.get("/metrics").text
    assert 'tailsynth_gateway_auth_failures_total{reason="invalid"}' in metrics


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(secured: TestClient) -> None:
    headers = {"X-API-Key": LIMITED_KEY}
    statuses = [secured.get("/v1/queue", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = secured.get("/v1/queue", headers=headers)
    assert refused.status_code == 429
    assert "3 requests per minute" in refused.json()["detail"]
    # 3 per minute: the next request is allowed 20 s after the first.
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    # Another key is not affected.
    assert secured.get("/v1/queue", headers={"X-API-Key": KEY}).status_code == 200


def test_a_batch_counts_each_query_against_the_limit(secured: TestClient) -> None:
    body = {"queries": [{"query": "drill"}] * 4}
    refused = secured.post("/v1/synthesize:batch", json=body, headers={"X-API-Key": LIMITED_KEY})
    assert refused.status_code == 429, refused.text


def test_without_keys_one_shared_limit_applies(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    redis.Redis.from_url(redis_server.url).delete("tailsynth:ratelimit:anonymous")
    with _client(redis_server, tmp_path, rate_limit_per_minute=2) as client:
        statuses = [client.get("/v1/queue").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_the_limit_fails_open_while_redis_is_down(tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    app = create_app(
        GatewaySettings(redis_url=f"redis://{nowhere}/0", api_keys=entry("k", KEY, 1)),
        PipelineSettings(rewriter_target=nowhere, retriever_target=nowhere, judge_target=nowhere),
        StoreSettings(state_dir=tmp_path),
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        # Past auth and the (unreachable) limiter, the queue itself answers 503.
        for _ in range(3):
            assert client.get("/v1/queue", headers={"X-API-Key": KEY}).status_code == 503


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k:abc", "64-hex-digit SHA-256"),
        ("k", "expected name:sha256hex"),
        (f"bad name:{'a' * 64}", "key name"),
        (f"k:{'a' * 64}:0", "positive integer"),
        (f"k:{'a' * 64}:fast", "positive integer"),
        (f"k:{'a' * 64},k:{'b' * 64}", "duplicate"),
    ],
)
def test_malformed_key_entries_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_entries(text, "TAILSYNTH_GATEWAY_API_KEYS")


def test_keys_come_from_a_file_too_and_only_their_digests_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# search backends\n{entry('a', KEY)}\n{entry('b', LIMITED_KEY, 5)}\n")
    keys = load_keys("", path)
    assert {k.name for k in keys.values()} == {"a", "b"}
    assert KEY not in path.read_text() and all(KEY not in digest for digest in keys)
    with pytest.raises(ConfigError, match="cannot read"):
        load_keys("", tmp_path / "missing")
    with pytest.raises(ConfigError, match="both inline and in"):
        load_keys(entry("a", new_key()), path)


def test_cors_is_off_by_default_and_on_for_configured_origins(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    origin = {"Origin": "https://shop.example"}
    with _client(redis_server, tmp_path) as closed:
        assert "access-control-allow-origin" not in closed.get("/v1/queue", headers=origin).headers
    with _client(redis_server, tmp_path, cors_origins="https://shop.example") as open_:
        response = open_.get("/v1/queue", headers=origin)
        assert response.headers["access-control-allow-origin"] == "https://shop.example"
        other = open_.get("/v1/queue", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_request_ids_are_echoed_or_made(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    with _client(redis_server, tmp_path) as client:
        assert client.get("/healthz", headers={"X-Request-ID": "req-42"}).headers["x-request-id"] == "req-42"
        made = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
        assert made != "bad id\twith spaces" and len(made) == 32
        assert len(client.get("/healthz").headers["x-request-id"]) == 32


def test_the_debug_page_is_off_unless_configured(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    with _client(redis_server, tmp_path) as off:
        assert off.get("/debug").status_code == 404
    with _client(redis_server, tmp_path, debug_page=True) as on:
        page = on.get("/debug")
        assert page.status_code == 200 and "/v1/synthesize/stream" in page.text
        # The form's defaults and bounds are the request model's.
        assert 'name="n" min="1" max="16" value="4"' in page.text
        assert 'name="k" min="1" max="200" value="20"' in page.text and "{{" not in page.text
