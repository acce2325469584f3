"""ONNX Runtime backend for the sentence encoder, exported from the same MiniLM weights on first use.

The export (transformer + mean pooling + L2 normalisation, then onnxruntime's transformer fusions;
~10 s) needs torch and `onnx`; serving needs only onnxruntime and the tokenizer. The graph is refused
unless it reproduces PyTorch's embeddings (cosine >= MIN_COSINE on every probe text). With a cache dir the verified graph is written there once
(file lock, temporary file renamed into place); without one it lives in memory for this process.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from services.core.assets import _file_lock, fingerprint
from services.core.durable import publish
from services.core.encoder_backend import EncoderBackend
from services.core.errors import ConfigError
from services.core.optional import install_hint

log = logging.getLogger(__name__)

OPSET = 17
MIN_COSINE = 0.999
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Short, long (truncated at the model's limit), non-Latin and symbol-only texts: the shapes and token
# ranges an exported graph could get wrong.
PROBES = [
    "cordless drill",
    "Voltra 20V Cordless Drill/Driver Kit with 2 Batteries, Charger and Bag",
    "Aquavell Digital Bath Thermometer for Baby Tub",
    "x",
    "led bulb 60w",
    "Küchenspüle aus Edelstahl 単一 ボウル 不锈钢水槽",
    "!!! ??? ###",
    " ".join(["heavy duty outdoor patio furniture cover waterproof"] * 60),
]


def _pipeline_parts(model: Any) -> tuple[Any, int]:
    """The Hugging Face model and max length, after checking the pipeline is transformer+mean+normalize."""
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"}:
        raise ConfigError(f"cannot export encoder pipeline {kinds} to ONNX (expected Transformer, Pooling)")
    pooling = modules[1].get_config_dict().get("pooling_mode")
    if pooling != "mean":
        raise ConfigError(f"cannot export {pooling!r} pooling to ONNX (mean only)")
    return modules[0].auto_model, int(model.max_seq_length)


def fuse(graph: bytes, config: Any) -> bytes:
    """Fuse attention, GELU and layer norms (onnxruntime's transformer optimizer): ~10% faster on CPU.
    An unfused graph is still correct, so a fusion failure only costs that."""
    try:
        import onnx
        from onnxruntime.transformers import optimizer

        _quiet_optimizer_modules(Path(optimizer.__file__).parent)
        fused = optimizer.optimize_model(
            onnx.load_from_string(graph),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            opt_level=1,
        )
        fused_ops = {op: n for op, n in fused.get_fused_operator_statistics().items() if n}
        log.info("fused ONNX operators: %s", fused_ops)
        return bytes(fused.model.SerializeToString())
    except Exception as error:
        log.warning("ONNX graph left unfused: %r", error)
        return graph


def _quiet_optimizer_modules(package: Path) -> None:
    """The optimizer's modules log each fusion at INFO under their bare module names (`fusion_base`,
    `onnx_model`...); the one summary line of `fuse` says the same."""
    for name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").parent == package:
            logging.getLogger(name).setLevel(logging.WARNING)


def export(path: Path) -> tuple[bytes, float, int]:
    """Export the model at `path`; return (ONNX bytes, lowest probe cosine vs PyTorch, max length)."""
    import torch
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(path), device="cpu")
    _, max_length = _pipeline_parts(reference)
    # Traced with eager attention: its graph is the pattern ONNX Runtime fuses into Attention ops.
    traced = SentenceTransformer(str(path), device="cpu", model_kwargs={"attn_implementation": "eager"})
    auto_model, _ = _pipeline_parts(traced)

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = auto_model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            tokens = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )[0]
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    sample = reference.tokenizer(
        PROBES[:2], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    buffer = io.BytesIO()
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS} | {"embedding": {0: "batch"}}
    # The tracer warns about shape-dependent Python branches; the probe check below is the real test.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pooled().eval(),
            tuple(sample[name] for name in INPUTS),
            buffer,  # type: ignore[arg-type]  # the TorchScript exporter writes to file objects too
            input_names=list(INPUTS),
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the dynamo exporter needs onnxscript; the TorchScript one traces this model exactly
        )
    graph = fuse(buffer.getvalue(), auto_model.config)
    candidate = OnnxBackend(graph, reference.tokenizer, max_length, batch_size=8)
    expected = reference.encode(
        PROBES, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    cosine = float(np.einsum("ij,ij->i", candidate.embed(PROBES), expected).min())
    if not cosine >= MIN_COSINE:
        raise ConfigError(f"ONNX export does not reproduce PyTorch (lowest cosine {cosine:.5f})")
    return graph, cosine, max_length


def graph_stem(path: Path) -> str:
    """Cache name of the graph exported from the model at `path`: keyed by the weights' fingerprint, so
    a fine-tuned model gets its own export even in a directory named like another model's."""
    import torch

    return f"{path.name}-{fingerprint(path)}-torch{torch.__version__}-opset{OPSET}-fused".replace("+", "_")


def cached_graph(path: Path, cache_dir: Path) -> tuple[Path, int]:
    """The verified graph for these weights under cache_dir, exported once; return (file, max length)."""
    import onnxruntime
    import torch

    target = cache_dir / "onnx" / f"{graph_stem(path)}.onnx"
    meta = target.with_suffix(".json")
    if target.is_file() and meta.is_file():
        return target, int(json.loads(meta.read_text())["max_length"])
    with _file_lock(cache_dir / "onnx" / ".export.lock"):
        if target.is_file() and meta.is_file():
            return target, int(json.loads(meta.read_text())["max_length"])
        log.info("exporting %s to ONNX under %s (once)", path.name, target.parent)
        graph, cosine, max_length = export(path)
        for file, data in (
            (target, graph),
            (
                meta,
                json.dumps(
                    {
                        "weights": fingerprint(path),
                        "min_probe_cosine": cosine,
                        "max_length": max_length,
                        "torch": torch.__version__,
                        "onnxruntime": onnxruntime.__version__,
                    }
                ).encode(),
            ),
        ):
            with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp-", delete=False) as handle:
                handle.write(data)
            os.chmod(handle.name, 0o644)
            publish(Path(handle.name), file)
    return target, max_length


class OnnxBackend(EncoderBackend):
    name = "onnx"

    def __init__(self, graph: bytes | Path, tokenizer: Any, max_length: int, batch_size: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads sleep instead of spinning: under load the other services (the rewriter, the
        # judge) share these cores, and a spinning thread takes CPU time from them for nothing.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = str(graph) if isinstance(graph, Path) else graph
        self.session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    @classmethod
    def load(cls, path: Path, device: str, batch_size: int, cache_dir: Path | None) -> OnnxBackend:
        if device != "cpu":
            raise ConfigError(
                f"the onnx encoder backend runs on CPU only; device is {device}: use backend torch"
            )
        try:
            import onnxruntime  # noqa: F401
        except ImportError as error:
            raise ConfigError(
                f"the onnx encoder backend needs onnxruntime: {install_hint('encoder')}"
            ) from error
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if cache_dir is None:
            graph, _, max_length = export(path)
            return cls(graph, tokenizer, max_length, batch_size)
        file, max_length = cached_graph(path, cache_dir)
        return cls(file, tokenizer, max_length, batch_size)

    def embed(self, texts: list[str]) -> np.ndarray:
        # Like sentence-transformers: strip, sort by length so batches pad little, restore the order.
        stripped = [t.strip() for t in texts]
        order = np.argsort([-len(t) for t in stripped], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            tokens = self.tokenizer(
                [stripped[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            feed = {name: np.asarray(tokens[name], dtype=np.int64) for name in self.inputs}
            out[rows] = self.session.run(None, feed)[0]
        return out
