"""llama.cpp states of fixed prompt prefixes, saved to disk.

Every prompt of one kind starts with the same tokens: the instructions, the chat template,
the evidence header. llama.cpp keeps them in its KV cache between questions in one process;
a new process would process them again (about 200 tokens, two seconds on two cores) before
its first answer. Here the state after those tokens is written once with llama.cpp's own
``llama_state_save_file`` and loaded by later processes (a few milliseconds).

A file is named by the model (path, size, mtime), the context size, the llama.cpp
binding's version and the tokens themselves, and it also stores the tokens: a file that
does not match, or that llama.cpp cannot read, is ignored and written again. Files are
written to a temporary name and renamed, so a crash never leaves half a file in place.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from index.home import data_home

log = logging.getLogger(__name__)

SUFFIX = ".llstate"


def default_folder() -> Path:
    """``$RAG_HOME/cache/prompts``."""
    return data_home() / "cache" / "prompts"


def model_key(model_path: str, n_ctx: int, extra: str = "") -> str:
    """What a saved state depends on besides its tokens."""
    import llama_cpp

    st = os.stat(model_path)
    ident = f"{os.path.realpath(model_path)}|{st.st_size}|{st.st_mtime_ns}|{n_ctx}|" \
            f"{llama_cpp.__version__}|{extra}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def common_prefix(seqs: Sequence[Sequence[int]]) -> list[int]:
    """The longest token sequence every one of ``seqs`` starts with."""
    if not seqs:
        return []
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for i in range(n):
        t = first[i]
        if any(s[i] != t for s in seqs[1:]):
            return list(first[:i])
    return list(first[:n])


class PromptCache:
    """Saved states of one model in one context configuration, in ``folder``."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder = Path(folder)
        self.key = key

    def path_for(self, tokens: Sequence[int]) -> Path:
        digest = hashlib.sha256(b"".join(int(t).to_bytes(4, "little", signed=True)
                                         for t in tokens)).hexdigest()[:20]
        return self.folder / f"{self.key}-{digest}{SUFFIX}"

    def load(self, llm, tokens: Sequence[int]) -> bool:
        """Restore the state after ``tokens`` into ``llm`` (a ``llama_cpp.Llama``);
        False when there is no usable file (then ``llm``'s state is reset)."""
        import llama_cpp

        path = self.path_for(tokens)
        if not path.is_file():
            return False
        out = (llama_cpp.llama_token * len(tokens))()
        n = ctypes.c_size_t(0)
        ok = llama_cpp.llama_state_load_file(llm._ctx.ctx, str(path).encode(), out,
                                             len(tokens), ctypes.byref(n))
        if not ok or n.value != len(tokens) or list(out[:n.value]) != list(tokens):
            log.warning("prompt cache %s does not match; it will be written again", path)
            llm.reset()
            return False
        llm.input_ids[:len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        return True

    def save(self, llm, tokens: Sequence[int]) -> Path | None:
        """Write ``llm``'s state, which must hold exactly ``tokens``; None when the
        folder cannot be written (the cache is an optimisation, never a failure)."""
        import llama_cpp

        path = self.path_for(tokens)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        arr = (llama_cpp.llama_token * len(tokens))(*tokens)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not llama_cpp.llama_state_save_file(llm._ctx.ctx, str(tmp).encode(), arr,
                                                   len(tokens)):
                raise OSError("llama_state_save_file failed")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot save the prompt cache in %s (%s)", self.folder, exc)
            return None
        finally:
            tmp.unlink(missing_ok=True)
        return path
