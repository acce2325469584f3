"""Labels an LLM answers with: each must be exactly one token, so one forward pass reads them all."""

from __future__ import annotations

from typing import Any

from services.core.errors import ConfigError


def label_token_ids(tokenizer: Any, labels: list[str], where: str) -> list[int]:
    """The token id of each label; a label that is not exactly one token is a configuration error."""
    if len(set(labels)) != len(labels) or len(labels) < 2:
        raise ConfigError(f"{where}: labels must be at least two distinct strings, got {labels!r}")
    ids = []
    for label in labels:
        tokens = tokenizer.encode(label, add_special_tokens=False)
        if len(tokens) != 1:
            raise ConfigError(
                f"{where}: label {label!r} is {len(tokens)} tokens {tokens} in this tokenizer; "
                "every label must be a single token (mind the leading space)"
            )
        ids.append(int(tokens[0]))
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}: labels {labels!r} share a token id")
    return ids
