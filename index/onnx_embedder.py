"""ONNX embedder: the sentence-transformers model exported once to ONNX, tokenized with its
fast tokenizer, run by ONNX Runtime (``pip install 'cited-rag[onnx]'``) or OpenVINO (``pip
install 'cited-rag[openvino]'``), pooled and L2-normalised as the model's sentence-transformers
pipeline does. Four forms of the model:

- fp32 export, on ONNX Runtime or on OpenVINO (which computes in bf16 on CPUs with AMX or
  AVX512-BF16);
- int8 weights by dynamic quantization, on ONNX Runtime;
- int8 weights and activations by static quantization (NNCF, calibrated on
  ``index.calibration`` texts, SmoothQuant), on OpenVINO: int8 kernels (VNNI / AMX).

Exports live in ``$RAG_HOME/models/onnx/<model>-<weights hash>/`` (``model.onnx``,
``model_qint8.onnx``, ``model_int8.xml`` + ``.bin``); a changed weights file gets a new folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import inspect
import io
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.embedders import DEFAULT_EMBEDDING_MODEL, CachedQueryEmbedder, resolve_embedding_model
from index.errors import ModelError
from index.home import data_home

log = logging.getLogger(__name__)

RUNTIMES = {"onnxruntime": ("onnx", ("onnxruntime", "onnx")),  # runtime: extra, packages
            "openvino": ("openvino", ("openvino", "onnx"))}
FP32_FILE = "model.onnx"
INT8_FILE = "model_qint8.onnx"
OV_INT8_FILE = "model_int8.xml"  # OpenVINO IR; its weights in model_int8.bin
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
OPSET = 17
_SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}
_POOL_MODES = ("cls", "max", "mean", "mean_sqrt_len")  # sentence-transformers' concat order


def onnx_cache_home() -> Path:
    """Default folder for exported models: ``$RAG_HOME/models/onnx``."""
    return data_home() / "models" / "onnx"


def local_model_folder(name: str) -> Path:
    """The folder holding ``name``'s files (packaged, a path, or the local HF cache)."""
    loc = resolve_embedding_model(name)
    if Path(loc).is_dir():
        return Path(loc)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(loc, local_files_only=True))
    except Exception as exc:  # not cached, or not a valid id
        raise ModelError(f"embedding model {name!r} is neither a folder nor in the local "
                         f"Hugging Face cache ({str(exc).splitlines()[0]})") from exc


def weights_file(folder: Path) -> Path:
    for fname in WEIGHT_FILES:
        if (folder / fname).is_file():
            return folder / fname
    raise ModelError(f"no weights file ({' or '.join(WEIGHT_FILES)}) in {folder}")


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_dir(name: str, folder: Path, cache_dir: Path | None = None) -> Path:
    """``<cache>/<model-name-slug>-<first 12 hex of the weights' sha256>``."""
    wfile = weights_file(folder)
    st = wfile.stat()
    digest = _sha256(str(wfile), st.st_size, st.st_mtime_ns)[:12]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name.rstrip("/\\")).name).strip("-.")
    return Path(cache_dir or onnx_cache_home()) / f"{slug or 'model'}-{digest}"


def _tmp_path(target: Path) -> Path:
    return target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.part{target.suffix}")


def export_onnx(folder: Path, target: Path) -> Path:
    """Export the model's transformer (last_hidden_state) to ``target`` with dynamic batch
    and sequence axes. Written under a temporary name, then renamed."""
    import torch
    from transformers import AutoModel

    target.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager")
    model.eval()
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(model.forward).parameters:
        names.append("token_type_ids")

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, args, strict=True))).last_hidden_state

    # A padded example, so the traced graph keeps the attention-mask path.
    ids = torch.full((2, 8), 101, dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    mask[1, 5:] = 0
    example = (ids, mask, torch.zeros_like(ids))[:len(names)]
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    tmp = _tmp_path(target)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Hidden(model), example, str(tmp), input_names=names,
                              output_names=["last_hidden_state"], dynamic_axes=axes,
                              opset_version=OPSET, dynamo=False)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s to %s in %.1f s", folder, target, time.perf_counter() - t0)
    return target


class _QuietQuantizer(logging.Filter):
    """Drops the quantizer's per-tensor chatter and hints, which it logs on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "quantization" not in Path(record.pathname).parts


def quantize_onnx(source: Path, target: Path) -> Path:
    """Dynamic int8 quantization (QInt8 weights, per channel, MatMul only: quantizing the
    embedding table as well costs accuracy for no speed). Temporary name, then rename."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = _QuietQuantizer()
    root.addFilter(quiet)
    t0 = time.perf_counter()
    tmp = _tmp_path(target)
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
        os.replace(tmp, target)
    finally:
        # onnxruntime.quantization calls logging.basicConfig: leave the app's logging alone
        root.handlers[:] = handlers
        root.setLevel(level)
        root.removeFilter(quiet)
        tmp.unlink(missing_ok=True)
    log.info("quantized %s to %s in %.1f s", source, target, time.perf_counter() - t0)
    return target


def _import_nncf():
    """nncf, with its usage telemetry off: nncf sends it unless the user opted out."""
    if importlib.util.find_spec("nncf") is None:
        raise ModelError("the openvino-int8 embedding backend quantizes the model with nncf, "
                         f"which is not installed; install it with: {install_hint('openvino')}")
    saved = sys.modules.get("openvino_telemetry")
    sys.modules["openvino_telemetry"] = None  # nncf then falls back to its no-op telemetry
    try:
        import nncf
    finally:
        if saved is None:
            sys.modules.pop("openvino_telemetry", None)
        else:
            sys.modules["openvino_telemetry"] = saved
    wrapper = sys.modules.get("nncf.telemetry.wrapper")
    impl = getattr(getattr(wrapper, "telemetry", None), "_impl", None)
    if isinstance(getattr(impl, "consent", None), bool):  # nncf was imported earlier
        impl.consent = False
    return nncf


def quantize_openvino(source: Path, target: Path, folder: Path,
                      texts: list[str] | None = None) -> Path:
    """Static int8 quantization of the fp32 export by NNCF for OpenVINO (transformer preset:
    int8 MatMuls, weights per channel, SmoothQuant, fast bias correction), calibrated on
    ``texts`` [default: ``index.calibration.calibration_texts``], one text per sample.
    Saved as OpenVINO IR ``target`` (.xml) and its .bin: temporary names, then the .bin and
    last the .xml are renamed."""
    nncf = _import_nncf()
    import openvino as ov

    from index.calibration import calibration_texts

    t0 = time.perf_counter()
    spec = pooling_spec(folder)
    tok = load_tokenizer(folder, spec.max_seq_length)
    if texts is None:
        texts = calibration_texts(list(tok.get_vocab()))
    if spec.do_lower_case:
        texts = [t.lower() for t in texts]
    model = ov.Core().read_model(str(source))
    names = [i.get_any_name() for i in model.inputs]
    data = [_feeds(tok, [t], names) for t in texts]
    nlog = logging.getLogger("nncf")
    level = nlog.level
    tmp = _tmp_path(target)
    tmp_bin, target_bin = tmp.with_suffix(".bin"), target.with_suffix(".bin")
    try:
        nlog.setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()):  # nncf's progress bars
            quantized = nncf.quantize(model, nncf.Dataset(data), subset_size=len(data),
                                      model_type=nncf.ModelType.TRANSFORMER)
        ov.save_model(quantized, str(tmp), compress_to_fp16=False)
        os.replace(tmp_bin, target_bin)
        os.replace(tmp, target)
    finally:
        nlog.setLevel(level)
        tmp.unlink(missing_ok=True)
        tmp_bin.unlink(missing_ok=True)
    log.info("quantized %s to %s (int8, %d calibration texts) in %.1f s", source, target,
             len(data), time.perf_counter() - t0)
    return target


def ensure_openvino_int8(name: str, cache_dir: Path | None = None) -> Path:
    """The statically quantized OpenVINO model (.xml) for ``name``; made on first use."""
    fp32 = ensure_onnx(name, cache_dir)
    target = fp32.with_name(OV_INT8_FILE)
    if not (target.is_file() and target.with_suffix(".bin").is_file()):
        quantize_openvino(fp32, target, local_model_folder(name))
    return target


def ensure_onnx(name: str, cache_dir: Path | None = None, quantized: bool = False) -> Path:
    """The exported (and, if asked, quantized) model file for ``name``; made on first use."""
    folder = local_model_folder(name)
    out = export_dir(name, folder, cache_dir)
    fp32 = out / FP32_FILE
    if not fp32.is_file():
        export_onnx(folder, fp32)
    if not quantized:
        return fp32
    int8 = out / INT8_FILE
    if not int8.is_file():
        quantize_onnx(fp32, int8)
    return int8


@dataclass(frozen=True)
class PoolingSpec:
    """What sentence-transformers does after the transformer, read from the model folder."""

    modes: tuple[str, ...] = ("mean",)
    max_seq_length: int | None = None
    do_lower_case: bool = False
    dim: int | None = None


def _read_json(path: Path) -> dict | list:
    return json.loads(path.read_text(encoding="utf-8"))


def _mode_name(key: str) -> str:
    return key.removeprefix("pooling_mode_").removesuffix("_tokens").removesuffix("_token")


def pooling_spec(folder: Path) -> PoolingSpec:
    """Pooling modes, max_seq_length and lower-casing from modules.json and friends. A
    folder without modules.json gets sentence-transformers' default: mean pooling."""
    bert_cfg = folder / "sentence_bert_config.json"
    cfg = _read_json(bert_cfg) if bert_cfg.is_file() else {}
    max_len, lower = cfg.get("max_seq_length"), bool(cfg.get("do_lower_case", False))
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return PoolingSpec(max_seq_length=max_len, do_lower_case=lower)
    modes: tuple[str, ...] = ("mean",)
    dim = None
    for mod in _read_json(modules_file):
        kind = str(mod.get("type", "")).rsplit(".", 1)[-1]
        if kind not in _SUPPORTED_MODULES:
            raise ModelError(f"the onnx embedding backend supports Transformer, Pooling and "
                             f"Normalize modules; {folder} has {kind}: use the torch backend")
        if kind == "Pooling":
            pcfg = _read_json(folder / mod.get("path", "") / "config.json")
            unsupported = [k for k, v in pcfg.items() if k.startswith("pooling_mode_") and v
                           and _mode_name(k) not in _POOL_MODES]
            if unsupported:
                raise ModelError(f"pooling {unsupported} is not supported by the onnx "
                                 f"embedding backend: use the torch backend")
            on = {_mode_name(k) for k, v in pcfg.items() if k.startswith("pooling_mode_") and v}
            modes = tuple(m for m in _POOL_MODES if m in on)
            hidden = pcfg.get("word_embedding_dimension")
            dim = hidden * len(modes) if hidden and modes else None
    if not modes:
        raise ModelError(f"{folder}: the Pooling module enables no pooling mode")
    return PoolingSpec(modes, max_len, lower, dim)


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


def load_tokenizer(folder: Path, max_length: int | None):
    """The model's fast tokenizer (``tokenizers``), truncating at ``max_length`` and padding
    each batch to its longest text."""
    if (folder / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        pad_cfg = _read_json(folder / "tokenizer_config.json") \
            if (folder / "tokenizer_config.json").is_file() else {}
        pad_token = pad_cfg.get("pad_token") if isinstance(pad_cfg.get("pad_token"), str) \
            else None
    else:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
        tok, pad_token = hf.backend_tokenizer, hf.pad_token
        max_length = max_length or hf.model_max_length
    if max_length is None:
        cfg = _read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
        max_length = cfg.get("max_position_embeddings", 512)
    padding = tok.padding or {}
    pad_token = pad_token or padding.get("pad_token") or "[PAD]"
    pad_id = tok.token_to_id(pad_token)
    pad_id = padding.get("pad_id", 0) if pad_id is None else pad_id
    tok.enable_truncation(max_length=int(max_length))
    tok.enable_padding(pad_id=pad_id, pad_token=pad_token)  # no fixed length: longest
    return tok


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def install_hint(runtime: str) -> str:
    return f"pip install 'cited-rag[{RUNTIMES[runtime][0]}]'"


def _feeds(tokenizer, texts: list[str], names: list[str]) -> dict[str, np.ndarray]:
    """The model's inputs (``names``) for ``texts``, padded to the longest."""
    enc = tokenizer.encode_batch(texts)
    feeds = {"input_ids": [e.ids for e in enc], "attention_mask": [e.attention_mask for e in enc],
             "token_type_ids": [e.type_ids for e in enc]}
    return {n: np.array(feeds[n], dtype=np.int64) for n in names}


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
        feeds = _feeds(self._tokenizer, texts, [*self._inputs, "attention_mask"])
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
