"""What a model directory given to an LLM runtime must be: a Hugging Face causal language model.

The rewriter's engines and `synth train rewriter` check it the same way, so a wrong directory is one
line naming it, not a stack trace from deep inside transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.core.errors import ConfigError

TRAINED_MANIFEST = "tailsynth-model.json"  # written by `synth train rewriter`


def check_causal_lm(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} is not a Hugging Face model directory (no config.json)")
    try:
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"{path}: config.json does not load ({str(error).splitlines()[0]})") from None
    # BERT has a causal-LM head class too: a saved model's architectures say what it was trained as.
    architectures = getattr(config, "architectures", None) or []
    heads = [a for a in architectures if a.endswith(("ForCausalLM", "LMHeadModel"))]
    if type(config) not in AutoModelForCausalLM._model_mapping or (architectures and not heads):
        what = ", ".join(architectures) or f"model_type {getattr(config, 'model_type', '?')!r}"
        raise ConfigError(f"{path} is not a causal language model ({what})")


def trained_manifest(path: Path) -> dict[str, Any]:
    """The training manifest of a model `synth train rewriter` wrote; {} for any other model."""
    try:
        manifest = json.loads((path / TRAINED_MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def trained_prompt(path: Path) -> str | None:
    """The name of the prompt a model `synth train rewriter` wrote was trained on; None for any other model."""
    version = trained_manifest(path).get("prompt")
    return version.split("@", 1)[0] if isinstance(version, str) and version else None
