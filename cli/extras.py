"""Which install extra provides a module, for a one-line error when it is missing."""

from __future__ import annotations

# top-level module -> the extra of cited-rag that installs it ("" = the package itself)
EXTRAS: dict[str, str] = {
    "llama_cpp": "llama",
    "fastapi": "server", "uvicorn": "server", "httpx": "server",
    "qdrant_client": "qdrant",
    "onnxruntime": "onnx", "onnx": "onnx",
    "openvino": "openvino", "nncf": "openvino",
    "gguf": "hf-gguf", "accelerate": "hf-gguf",
    "playwright": "ui-test", "gradio_client": "ui-test",
    "docx": "office", "pptx": "office", "openpyxl": "office", "odf": "office",
    "striprtf": "office", "defusedxml": "office",
    "rapidocr_onnxruntime": "ocr", "pypdfium2": "ocr",
    "gradio": "", "torch": "", "sentence_transformers": "", "transformers": "",
    "faiss": "", "bm25s": "", "numpy": "", "matplotlib": "", "pypdf": "", "bs4": "",
    "pysbd": "", "Stemmer": "", "pydantic_settings": "", "tqdm": "", "typer": "",
}


def missing_module_message(exc: ModuleNotFoundError) -> str | None:
    """``"... is not installed; install it with: pip install 'cited-rag[EXTRA]'"`` for a
    module one of the extras provides, else None."""
    top = (exc.name or "").split(".")[0]
    if top not in EXTRAS:
        return None
    extra = EXTRAS[top]
    target = f"'cited-rag[{extra}]'" if extra else "cited-rag"
    what = f"the {extra} extra" if extra else "a dependency of cited-rag"
    return (f"the Python module {top!r} ({what}) is not installed; install it with: "
            f"pip install {target}")
