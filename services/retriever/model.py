"""Which encoder an index is built and served with: the packaged all-MiniLM-L6-v2 or a model directory.

A build records the model directory it encoded with (absolute path; None for the packaged model) next
to the encoder fingerprint in the index manifest. Updates and the service open the encoder a version
records, never whatever the settings say today, and refuse it when the directory's weights no longer
hash to the recorded fingerprint (the model was changed after the build).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from services.core.assets import minilm_path
from services.core.encoder import Encoder
from services.core.errors import ConfigError
from services.retriever.config import RetrieverSettings

log = logging.getLogger(__name__)

MODEL_DIR_KEY = "model_dir"
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def check_model_dir(path: Path) -> Path:
    """The absolute path of a sentence-transformers model directory, or a ConfigError saying what is wrong."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise ConfigError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise ConfigError(f"model path {path} is not a directory")
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ConfigError(
            f"{path} is not a sentence-transformers model directory (no config.json or modules.json)"
        )
    if not any(p.is_file() and p.suffix in WEIGHT_SUFFIXES for p in path.rglob("*")):
        raise ConfigError(f"{path} holds no model weights (no *.safetensors or *.bin file)")
    return path


def open_encoder(settings: RetrieverSettings, model_dir: Path | None = None) -> Encoder:
    """The encoder for `model_dir` (default: the settings' model_dir, else the packaged MiniLM) on the
    settings' device and backend; index builds, updates and the service share it."""
    chosen = model_dir if model_dir is not None else settings.model_dir
    return _encoder(settings, check_model_dir(chosen) if chosen is not None else None)


def _encoder(settings: RetrieverSettings, path: Path | None) -> Encoder:
    try:
        return Encoder(
            path=path,
            device=settings.device,
            batch_size=settings.encode_batch_size,
            backend=settings.encoder_backend,
            cache_dir=settings.models_dir,
        )
    except ConfigError:
        raise
    except Exception as error:  # transformers raises many kinds for a directory it cannot read
        if path is None:
            raise
        raise ConfigError(f"model at {path} does not load: {type(error).__name__}: {error}") from None


def model_dir_of(encoder: Encoder) -> Path | None:
    """What a build with `encoder` records: its absolute model directory, None for the packaged model."""
    path = encoder.path.resolve()
    return None if path == minilm_path().resolve() else path


def recorded_model_dir(manifest: dict[str, Any]) -> Path | None:
    """The model directory an index version was built with; None for the packaged model (and for
    indexes built before the field existed, which all used it)."""
    value = manifest.get(MODEL_DIR_KEY)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"index {manifest.get('version')} records an invalid model_dir {value!r}")
    return Path(value)


def same_model(encoder: Encoder, manifest: dict[str, Any], served_dir: Path | None) -> bool:
    """True when `encoder` (opened for `served_dir`) is the one this manifest records."""
    return recorded_model_dir(manifest) == served_dir and manifest.get("encoder") == encoder.fingerprint


def open_recorded_encoder(settings: RetrieverSettings, manifest: dict[str, Any]) -> Encoder:
    """The encoder the index version behind `manifest` was built with, its fingerprint verified."""
    model_dir = recorded_model_dir(manifest)
    try:
        encoder = _encoder(settings, check_model_dir(model_dir) if model_dir else None)
    except ConfigError as error:
        raise ConfigError(
            f"index {manifest.get('version')} was built with model {model_dir or 'all-MiniLM-L6-v2'}, "
            f"which cannot be opened: {error}"
        ) from None
    expected = manifest.get("encoder")
    if encoder.fingerprint != expected:
        where = f"model at {model_dir}" if model_dir else "the packaged model"
        raise ConfigError(
            f"index {manifest.get('version')} was built with encoder {expected!r} but the {where} is now "
            f"{encoder.fingerprint!r}; rebuild the index with: synth index build --catalog FILE"
            + (f" --model {model_dir}" if model_dir else "")
        )
    log.info("encoder %s for index %s", encoder.fingerprint, manifest.get("version"))
    return encoder
