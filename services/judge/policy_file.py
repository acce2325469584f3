"""Where the acceptance policy comes from: a JSON file (TAILSYNTH_JUDGE_POLICY_FILE, written by
`synth judge calibrate`) or, without one, the threshold and weight settings.

    {
      "schema": "tailsynth.judge.policy/1",
      "exact_at": 0.8,
      "partial_at": 0.6,
      "kinds": {
        "query_product": {"mode": "all", "threshold": 0.7,
                          "thresholds": {"embedding": 0.7, "cross_encoder": 0.5}, "weights": {}},
        "query_rewrite": {"mode": "ensemble", "threshold": 0.75, "thresholds": {},
                          "weights": {"embedding": 1, "llm": 2}}
      },
      "provenance": {"labels": "labels.csv", "target_precision": 0.9}
    }

`thresholds` (per judge; others use `threshold`) and `weights` (judges not named weigh 1) may be
omitted. `provenance` is free-form (how the numbers were found) and does not change the policy.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.core.errors import ConfigError
from services.judge.config import JudgeSettings, parse_engine_map
from services.judge.engine import PairKind
from services.judge.policy import AcceptancePolicy, KindRule, Mode

SCHEMA = "tailsynth.judge.policy/1"

Score = Annotated[float, Field(ge=0, le=1)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["all", "ensemble"]
    threshold: Score
    thresholds: dict[str, Score] = Field(default_factory=dict)
    weights: dict[str, Annotated[float, Field(ge=0, le=1e6)]] = Field(default_factory=dict)


class _Kinds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query_product: _Rule
    query_rewrite: _Rule


class _PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["tailsynth.judge.policy/1"] = Field(alias="schema")
    exact_at: Score
    partial_at: Score
    kinds: _Kinds
    provenance: dict[str, Any] = Field(default_factory=dict)


def _rule(rule: _Rule) -> KindRule:
    return KindRule(Mode(rule.mode), rule.threshold, dict(rule.thresholds), dict(rule.weights))


def load_policy(path: Path) -> AcceptancePolicy:
    """Read and validate a policy file; every problem is a ConfigError naming the file and the field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read the judge policy file {path}: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"judge policy file {path} is not valid JSON: {error}") from None
    try:
        parsed = _PolicyFile.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or '(top level)'}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"judge policy file {path} is invalid ({SCHEMA}): {problems}") from None
    try:
        return AcceptancePolicy(
            {
                PairKind.QUERY_PRODUCT: _rule(parsed.kinds.query_product),
                PairKind.QUERY_REWRITE: _rule(parsed.kinds.query_rewrite),
            },
            parsed.exact_at,
            parsed.partial_at,
        )
    except ConfigError as error:
        raise ConfigError(f"judge policy file {path}: {error}") from None


def policy_document(policy: AcceptancePolicy, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    def rule(kind: PairKind) -> dict[str, Any]:
        r = policy.rules[kind]
        return {
            "mode": r.mode.value,
            "threshold": r.threshold,
            "thresholds": dict(sorted(r.thresholds.items())),
            "weights": dict(sorted(r.weights.items())),
        }

    return {
        "schema": SCHEMA,
        "exact_at": policy.exact_at,
        "partial_at": policy.partial_at,
        "kinds": {kind.value: rule(kind) for kind in PairKind},
        "provenance": provenance or {},
    }


def save_policy(policy: AcceptancePolicy, path: Path, provenance: dict[str, Any] | None = None) -> None:
    """Write the policy atomically (a judge reading the file never sees half of it)."""
    text = json.dumps(policy_document(policy, provenance), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def policy_from_settings(settings: JudgeSettings) -> AcceptancePolicy:
    """The policy file if TAILSYNTH_JUDGE_POLICY_FILE is set, else the threshold/weight settings."""
    if settings.policy_file is not None:
        return load_policy(settings.policy_file)
    return AcceptancePolicy.uniform(
        Mode(settings.policy),
        settings.product_threshold,
        settings.rewrite_threshold,
        product_thresholds=parse_engine_map(settings.product_thresholds, "product_thresholds"),
        rewrite_thresholds=parse_engine_map(settings.rewrite_thresholds, "rewrite_thresholds"),
        weights=parse_engine_map(settings.weights, "weights"),
        exact_at=settings.exact_at,
        partial_at=settings.partial_at,
    )
