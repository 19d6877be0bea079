"""The onnxruntime (fp32, int8) and OpenVINO (fp32, int8) embedding backends against the torch
one, on the real all-MiniLM-L6-v2; plus the plumbing (factory, errors, cache reuse, atomic
export and quantization, calibration texts)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import typing
from pathlib import Path
from unittest.mock import MagicMock

import numpy as np
import pytest

from index.embed import onnx_embedder as ox
from index.embed import onnx_export as ex
from index.embed.base import DEFAULT_EMBEDDING_MODEL, CachedQueryEmbedder
from index.embed.embedders import EMBEDDING_BACKENDS, SentenceTransformerEmbedder, make_embedder
from index.errors import ModelError
from tests.conftest import DHSC_DOC, NHS_CORPUS

pytest.importorskip("onnxruntime")

QUESTION = "Did the health department confirm the taskforce?"


def nhs_sentences(n: int = 8) -> list[str]:
    text = (NHS_CORPUS / DHSC_DOC).read_text(encoding="utf-8")
    sents = [s.strip() for s in re.split(r"(?<=[.?!])\s+", text) if len(s.split()) >= 4]
    return [QUESTION, "NHS", *sents[:n]]  # very different lengths: padding is exercised


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    """One export (fp32 + int8) for the session, in its own folder: the autouse fixture
    gives every test another RAG_HOME, so the folder is passed explicitly."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    ex.ensure_onnx(DEFAULT_EMBEDDING_MODEL, cache, quantized=True)
    return cache


@pytest.fixture(scope="session")
def onnx_fp32(onnx_cache):
    emb = make_embedder(DEFAULT_EMBEDDING_MODEL, "onnx", cache_dir=onnx_cache)
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def onnx_int8(onnx_cache):
    emb = make_embedder(DEFAULT_EMBEDDING_MODEL, "onnx-int8", cache_dir=onnx_cache)
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def openvino_emb(onnx_cache):
    pytest.importorskip("openvino")
    emb = make_embedder(DEFAULT_EMBEDDING_MODEL, "openvino", cache_dir=onnx_cache)
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def openvino_int8(onnx_cache):
    """Quantized once per session (about 20 s on 2 cores), into the shared cache."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    emb = make_embedder(DEFAULT_EMBEDDING_MODEL, "openvino-int8", cache_dir=onnx_cache)
    emb.warm_up()
    return emb


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.model
def test_onnx_vectors_match_torch(real_embedder, onnx_fp32, onnx_int8, openvino_emb):
    texts = nhs_sentences()
    ref = real_embedder.embed_documents(texts)
    fp32 = onnx_fp32.embed_documents(texts)
    int8 = onnx_int8.embed_documents(texts)
    ov = openvino_emb.embed_documents(texts)
    assert fp32.dtype == ov.dtype == np.float32 and fp32.shape == ref.shape == (len(texts), 384)
    assert onnx_fp32.dim == onnx_int8.dim == openvino_emb.dim == real_embedder.dim
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert cosines(fp32, ref).min() >= 0.999
    assert cosines(ov, ref).min() >= 0.999  # bf16 on CPUs that have it
    assert cosines(int8, ref).min() >= 0.98
    # one text alone (no padding) gives the vector it gets inside a padded batch
    q = onnx_fp32.embed_query(texts[0])
    assert float(q @ fp32[0]) >= 0.9999
    assert onnx_fp32.embed_query(texts[0]) is q  # the shared query cache


@pytest.mark.model
def test_openvino_int8_vectors_match_torch(real_embedder, openvino_int8):
    texts = nhs_sentences()
    ref = real_embedder.embed_documents(texts)
    vecs = openvino_int8.embed_documents(texts)
    assert vecs.dtype == np.float32 and vecs.shape == ref.shape
    assert openvino_int8.dim == real_embedder.dim and openvino_int8.backend == "openvino-int8"
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert cosines(vecs, ref).min() >= 0.98  # 0.997 measured (0.994 on SQuAD text)
    q = openvino_int8.embed_query(texts[0])
    assert float(q @ vecs[0]) >= 0.999  # alone or inside a padded batch


@pytest.mark.model
def test_openvino_int8_runs_int8_kernels(openvino_int8):
    import openvino as ov

    path = openvino_int8.model_path
    assert path.name == ex.OV_INT8_FILE and path.with_suffix(".bin").is_file()
    model = ov.Core().read_model(str(path))
    ops = model.get_ordered_ops()
    fake_quantize = [op for op in ops if op.get_type_name() == "FakeQuantize"]
    int8_weights = [op for op in ops if op.get_type_name() == "Constant"
                    and op.get_element_type() == ov.Type.i8]
    assert len(fake_quantize) >= 36 and len(int8_weights) >= 36  # 6 layers x 6 MatMuls
    runtime = ov.Core().compile_model(model, "CPU").get_runtime_model()
    info = [op.get_rt_info() for op in runtime.get_ordered_ops()]
    precisions = {i["runtimePrecision"].astype(str) for i in info
                  if i["layerType"].astype(str) == "FullyConnected"}
    assert precisions & {"u8", "i8", "I8"}, precisions


@pytest.mark.model
def test_truncates_at_max_seq_length(onnx_fp32, real_embedder):
    long = " ".join(nhs_sentences(40)) * 3  # far over 256 tokens
    assert onnx_fp32._spec.max_seq_length == 256
    assert len(onnx_fp32._tokenizer.encode(long).ids) == 256
    cos = cosines(onnx_fp32.embed_documents([long]), real_embedder.embed_documents([long]))
    assert cos[0] >= 0.999


@pytest.mark.model
def test_same_top_passage_with_each_backend(tmp_path, real_index, real_embedder, onnx_fp32,
                                            onnx_int8, openvino_emb, openvino_int8):
    from index.builder import build_index
    from index.stores import disk
    from rag.retrieve.retrievers import HybridRetriever

    tops = {}
    for name, emb in (("torch", real_embedder), ("onnx", onnx_fp32), ("onnx-int8", onnx_int8),
                      ("openvino", openvino_emb), ("openvino-int8", openvino_int8)):
        path = real_index if name == "torch" else tmp_path / name
        if name != "torch":
            build_index(NHS_CORPUS, path, emb)
        data = disk.load(path, embedding_model=emb.name)
        hit = HybridRetriever(data, emb, mode="dense").retrieve(QUESTION, 1)[0]
        tops[name] = (hit.doc, hit.start, hit.end)
    assert len(set(tops.values())) == 1, tops
    assert tops["torch"][0] == DHSC_DOC


@pytest.mark.model
def test_export_is_reused(onnx_cache, onnx_fp32, openvino_int8, monkeypatch):
    files = sorted(onnx_cache.rglob("*"))
    stamps = {p: p.stat().st_mtime_ns for p in files}

    def no_export(*_a, **_k):
        raise AssertionError("exported again")

    monkeypatch.setattr(ex, "export_onnx", no_export)
    monkeypatch.setattr(ex, "quantize_onnx", no_export)
    monkeypatch.setattr(ex, "quantize_openvino", no_export)
    for backend in ("onnx", "onnx-int8", "openvino", "openvino-int8"):
        emb = make_embedder(DEFAULT_EMBEDDING_MODEL, backend, cache_dir=onnx_cache)
        emb.warm_up()
        assert emb.model_path.parent.parent == onnx_cache
    assert sorted(onnx_cache.rglob("*")) == files
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    names = {p.name for p in files if p.is_file()}
    # no temporary file left behind
    assert names == {ex.FP32_FILE, ex.INT8_FILE, ex.OV_INT8_FILE, "model_int8.bin"}
    assert re.fullmatch(r"all-MiniLM-L6-v2-[0-9a-f]{12}", onnx_fp32.model_path.parent.name)


@pytest.mark.model
def test_quantizing_leaves_logging_alone(onnx_cache, tmp_path):
    import logging

    root = logging.getLogger()
    before = (root.handlers[:], root.level, root.filters[:])
    fp32 = next(onnx_cache.rglob(ex.FP32_FILE))
    ex.quantize_onnx(fp32, tmp_path / ex.INT8_FILE)
    assert (root.handlers, root.level, root.filters) == before
    assert [p.name for p in tmp_path.iterdir()] == [ex.INT8_FILE]


@pytest.mark.model
def test_failed_openvino_quantization_leaves_no_model(onnx_cache, tmp_path, monkeypatch):
    ov = pytest.importorskip("openvino")

    class FakeNncf:  # the real feeds and model, without the 20 s of calibration
        ModelType = type("ModelType", (), {"TRANSFORMER": "transformer"})
        Dataset = list

        @staticmethod
        def quantize(model, data, **kw):
            assert len(data) == 300 and kw["subset_size"] == 300
            assert set(data[0]) == {"input_ids", "attention_mask", "token_type_ids"}
            return model

    def crash(model, path, **_kw):
        Path(path).write_text("<half an")
        Path(path).with_suffix(".bin").write_bytes(b"\0" * 16)
        raise RuntimeError("disk full")

    monkeypatch.setattr(ex, "_import_nncf", lambda: FakeNncf)
    monkeypatch.setattr(ov, "save_model", crash)
    fp32 = next(onnx_cache.rglob(ex.FP32_FILE))
    with pytest.raises(RuntimeError, match="disk full"):
        ex.quantize_openvino(fp32, tmp_path / ex.OV_INT8_FILE,
                             ex.local_model_folder(DEFAULT_EMBEDDING_MODEL))
    assert list(tmp_path.iterdir()) == []


def test_calibration_texts_are_fixed_and_varied(tmp_path):
    from index.embed.calibration import BUNDLED_CORPUS, calibration_texts

    vocab = ["zebra", "quokka", "##s", "42", "xylophone", "[PAD]", "ox"]
    texts = calibration_texts(vocab)
    assert texts == calibration_texts(vocab) and len(texts) == 300
    corpus = " ".join(" ".join(f.read_text(encoding="utf-8").split())
                      for f in sorted(BUNDLED_CORPUS.glob("*.txt")))
    assert sum(t in corpus for t in texts) == 100  # a third: windows of the bundled corpus
    assert any(t.endswith("?") for t in texts)  # questions, as queries are
    lengths = sorted(len(t.split()) for t in texts)
    assert lengths[0] <= 5 and lengths[-1] >= 100
    words = {"zebra", "quokka", "xylophone"}  # a third: whole words of the vocabulary
    assert sum(set(t.replace(".", "").split()) <= words for t in texts) == 100
    alone = calibration_texts(vocab, corpus=tmp_path)  # no corpus: generated text only
    assert len(alone) == 300 and not any(t in corpus for t in alone)


def test_default_cache_is_under_rag_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path))
    folder = ex.local_model_folder(DEFAULT_EMBEDDING_MODEL)
    assert ex.export_dir(DEFAULT_EMBEDDING_MODEL, folder).parent == tmp_path / "models" / "onnx"


def test_failed_export_leaves_no_model(tmp_path, monkeypatch):
    import torch

    def crash(model, args, f, **_kw):
        with open(f, "wb") as fh:
            fh.write(b"half a model")
        raise RuntimeError("killed mid-export")

    monkeypatch.setattr(torch.onnx, "export", crash)
    target = tmp_path / "m" / ex.FP32_FILE
    with pytest.raises(RuntimeError, match="mid-export"):
        ex.export_onnx(ex.local_model_folder(DEFAULT_EMBEDDING_MODEL), target)
    assert list(target.parent.iterdir()) == []


def test_bad_backend_names_the_valid_ones():
    with pytest.raises(ValueError, match="onnx-int8, openvino, openvino-int8; got 'tensorrt'"):
        make_embedder(backend="tensorrt")
    from rag.config import Settings

    assert typing.get_args(Settings.model_fields["embedding_backend"].annotation) \
        == EMBEDDING_BACKENDS
    with pytest.raises(ValueError, match="onnx-int8"):
        Settings(embedding_backend="onnx_int8")


def test_missing_runtime_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ModelError, match=re.escape("pip install 'cited-rag[onnx]'")):
        make_embedder(backend="onnx-int8")
    for backend in ("openvino", "openvino-int8"):
        with pytest.raises(ModelError, match=re.escape("pip install 'cited-rag[openvino]'")):
            make_embedder(backend=backend)


def test_nncf_imports_without_telemetry():
    pytest.importorskip("nncf")
    before = sys.modules.get("openvino_telemetry")
    ex._import_nncf()
    assert sys.modules.get("openvino_telemetry") is before
    telemetry = sys.modules["nncf.telemetry.wrapper"].telemetry
    assert isinstance(telemetry, MagicMock) or telemetry._impl.consent is False


def test_missing_nncf_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(ModelError, match=re.escape("nncf, which is not installed; install it "
                                                   "with: pip install 'cited-rag[openvino]'")):
        ex._import_nncf()


def test_construction_is_lazy_and_validates(tmp_path):
    emb = make_embedder("no/such-model", "onnx-int8", cache_dir=tmp_path / "c")
    assert emb.name == "no/such-model" and emb.backend == "onnx-int8"
    assert not (tmp_path / "c").exists()
    with pytest.raises(ModelError):
        emb.warm_up()
    with pytest.raises(ValueError, match="batch_size"):
        ox.OnnxEmbedder(batch_size=0)
    with pytest.raises(ValueError, match="threads"):
        ox.OnnxEmbedder(threads=0)
    assert isinstance(make_embedder(), SentenceTransformerEmbedder)
    if importlib.util.find_spec("openvino"):
        emb = make_embedder("no/such-model", "openvino-int8", cache_dir=tmp_path / "c")
        assert emb.backend == "openvino-int8" and emb.quantized and emb.runtime == "openvino"


def test_pipeline_builds_the_configured_backend():
    from rag.config import Settings
    from rag.pipeline import Pipeline

    pipe = Pipeline(Settings(embedding_backend="onnx-int8"))
    assert isinstance(pipe.embedder, ox.OnnxEmbedder) and pipe.embedder.quantized
    assert pipe.embedder._session is None  # nothing loaded yet


def test_pooling_spec_follows_the_model_folder(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    modules = [{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 4, "pooling_mode_cls_token": True,
         "pooling_mode_max_tokens": True}))
    spec = ex.pooling_spec(tmp_path)
    assert spec == ex.PoolingSpec(("cls", "max"), 128, False, 8)
    modules.append({"idx": 2, "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelError, match="Dense"):
        ex.pooling_spec(tmp_path)


def test_pool_ignores_padding():
    hidden = np.array([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    mean = ox.pool(hidden, mask, ("mean",))
    np.testing.assert_allclose(mean, [[2 / np.hypot(2, 2), 2 / np.hypot(2, 2)]], rtol=1e-6)
    np.testing.assert_allclose(ox.pool(hidden, mask, ("max",)), [[0.6, 0.8]], rtol=1e-6)
    np.testing.assert_allclose(ox.pool(hidden, mask, ("cls",)), [[1.0, 0.0]])


class _Counting(CachedQueryEmbedder):
    def __init__(self, size: int) -> None:
        super().__init__("test/counting", size)
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.full((len(texts), 2), float(len(texts[0])), dtype=np.float32)


def test_query_cache_is_lru():
    emb = _Counting(size=2)
    for q in ("a", "bb", "a", "ccc", "a", "bb"):
        emb.embed_query(q)
    assert emb.calls == 4  # "bb" was evicted by "ccc", "a" stayed (recently used)
    with pytest.raises(ValueError, match="query_cache"):
        _Counting(size=-1)
