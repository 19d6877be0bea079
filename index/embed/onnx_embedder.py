"""ONNX embedder: the sentence-transformers model exported once to ONNX, tokenized with its
fast tokenizer, run by ONNX Runtime (``pip install 'cited-rag[onnx]'``) or OpenVINO (``pip
install 'cited-rag[openvino]'``), pooled and L2-normalised as the model's sentence-transformers
pipeline does. Four forms of the model:

- fp32 export, on ONNX Runtime or on OpenVINO (which computes in bf16 on CPUs with AMX or
  AVX512-BF16);
- int8 weights by dynamic quantization, on ONNX Runtime;
- int8 weights and activations by static quantization (NNCF, calibrated on
  ``index.embed.calibration`` texts, SmoothQuant), on OpenVINO: int8 kernels (VNNI / AMX).

The exports and their folders: ``index.embed.onnx_export``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path

import numpy as np

from index.embed.base import DEFAULT_EMBEDDING_MODEL, CachedQueryEmbedder
from index.embed.onnx_export import (
    RUNTIMES,
    PoolingSpec,
    ensure_onnx,
    ensure_openvino_int8,
    install_hint,
    load_tokenizer,
    local_model_folder,
    model_inputs,
    pooling_spec,
)
from index.errors import ModelError

log = logging.getLogger(__name__)


def pool(hidden: np.ndarray, mask: np.ndarray, modes: tuple[str, ...]) -> np.ndarray:
    """sentence-transformers' Pooling (modes concatenated in its order), then L2 norm."""
    m = mask[..., None].astype(np.float32)
    parts = []
    for mode in modes:
        if mode == "cls":
            parts.append(hidden[:, 0])
        elif mode == "max":
            parts.append(np.where(m > 0, hidden, -1e9).max(axis=1))
        else:
            summed = (hidden * m).sum(axis=1)
            count = np.clip(m.sum(axis=1), 1e-9, None)
            parts.append(summed / (count if mode == "mean" else np.sqrt(count)))
    out = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out / np.clip(norm, 1e-12, None), dtype=np.float32)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _ort_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return (lambda feeds: session.run(None, feeds)[0]), [i.name for i in session.get_inputs()]


def _openvino_session(path: Path, threads: int):
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                           "PERFORMANCE_HINT": "LATENCY"})
    lock = threading.Lock()  # one implicit infer request: one call at a time

    def run(feeds: dict) -> np.ndarray:
        with lock:
            return np.asarray(compiled(feeds)[0])

    return run, [i.get_any_name() for i in compiled.inputs]


class OnnxEmbedder(CachedQueryEmbedder):
    """A sentence-transformers model run by ``runtime`` (onnxruntime or openvino) on its ONNX
    export; ``quantized``: int8 (onnxruntime: weights, dynamic; openvino: weights and
    activations, static). Exports (and quantizes) on first use into ``cache_dir`` [default:
    $RAG_HOME/models/onnx]; loads lazily."""

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, quantized: bool = False,
                 batch_size: int = 32, cache_dir: str | os.PathLike | None = None,
                 threads: int | None = None, query_cache: int = 1024,
                 runtime: str = "onnxruntime") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
        for package in RUNTIMES[runtime][1]:
            if importlib.util.find_spec(package) is None:
                raise ModelError(f"the {runtime} embedding backend needs {package}, which is "
                                 f"not installed; install it with: {install_hint(runtime)}")
        super().__init__(model, query_cache)
        self.quantized = quantized
        self.runtime = runtime
        self.backend = ("openvino" if runtime == "openvino" else "onnx") + \
            ("-int8" if quantized else "")
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.threads = threads
        self.model_path: Path | None = None
        self._session = None  # texts' feeds -> last_hidden_state
        self._tokenizer = None
        self._inputs: list[str] = []
        self._spec: PoolingSpec | None = None
        self._load_lock = threading.Lock()

    def warm_up(self) -> None:
        """Export (first time only), then load the tokenizer and the runtime's session."""
        if self._session is not None:
            return
        with self._load_lock:
            if self._session is not None:
                return
            try:
                if self.runtime == "openvino":
                    import openvino  # noqa: F401
                else:
                    import onnxruntime  # noqa: F401
            except ImportError as exc:
                raise ModelError(f"the {self.runtime} embedding backend cannot load ({exc}); "
                                 f"install it with: {install_hint(self.runtime)}") from exc
            folder = local_model_folder(self.name)
            spec = pooling_spec(folder)
            path = (ensure_openvino_int8(self.name, self.cache_dir)
                    if self.quantized and self.runtime == "openvino"
                    else ensure_onnx(self.name, self.cache_dir, self.quantized))
            threads = self.threads or _cores()
            try:
                session, inputs = (_openvino_session(path, threads) if self.runtime == "openvino"
                                   else _ort_session(path, threads))
            except Exception as exc:  # the runtimes raise their own exception types
                raise ModelError(f"cannot load the exported model {path} ({exc}); delete "
                                 f"{path.parent} to export it again") from exc
            self._tokenizer = load_tokenizer(folder, spec.max_seq_length)
            self._inputs = inputs
            self._spec, self.model_path, self._session = spec, path, session

    @property
    def dim(self) -> int:
        """From the Pooling config, without loading the model when it says."""
        if self._spec is None:
            self._spec = pooling_spec(local_model_folder(self.name))
        if self._spec.dim is None:
            return int(self.embed_documents(["dimension probe"]).shape[1])
        return self._spec.dim

    def _run(self, texts: list[str]) -> np.ndarray:
        feeds = model_inputs(self._tokenizer, texts, [*self._inputs, "attention_mask"])
        hidden = self._session({k: feeds[k] for k in self._inputs})
        return pool(hidden, feeds["attention_mask"], self._spec.modes)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._spec.do_lower_case:
            texts = [t.lower() for t in texts]
        order = np.argsort([-len(t) for t in texts], kind="stable")  # less padding per batch
        out: np.ndarray | None = None
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            vecs = self._run([texts[i] for i in idx])
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
        return out
