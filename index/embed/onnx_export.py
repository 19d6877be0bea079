"""The ONNX export of a sentence-transformers model, for the onnx and openvino embedding
backends (``index.embed.onnx_embedder``): the model folder read (its pooling, its tokenizer),
the transformer exported once to ONNX, and quantized (int8 weights on ONNX Runtime; int8
weights and activations on OpenVINO, calibrated on ``index.embed.calibration`` texts).

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
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.embed.base import resolve_embedding_model
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
    ``texts`` [default: ``index.embed.calibration.calibration_texts``], one text per sample.
    Saved as OpenVINO IR ``target`` (.xml) and its .bin: temporary names, then the .bin and
    last the .xml are renamed."""
    nncf = _import_nncf()
    import openvino as ov

    from index.embed.calibration import calibration_texts

    t0 = time.perf_counter()
    spec = pooling_spec(folder)
    tok = load_tokenizer(folder, spec.max_seq_length)
    if texts is None:
        texts = calibration_texts(list(tok.get_vocab()))
    if spec.do_lower_case:
        texts = [t.lower() for t in texts]
    model = ov.Core().read_model(str(source))
    names = [i.get_any_name() for i in model.inputs]
    data = [model_inputs(tok, [t], names) for t in texts]
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


def install_hint(runtime: str) -> str:
    return f"pip install 'cited-rag[{RUNTIMES[runtime][0]}]'"


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


def model_inputs(tokenizer, texts: list[str], names: list[str]) -> dict[str, np.ndarray]:
    """The model's inputs (``names``) for ``texts``, padded to the longest."""
    enc = tokenizer.encode_batch(texts)
    feeds = {"input_ids": [e.ids for e in enc], "attention_mask": [e.attention_mask for e in enc],
             "token_type_ids": [e.type_ids for e in enc]}
    return {n: np.array(feeds[n], dtype=np.int64) for n in names}


