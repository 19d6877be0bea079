"""The ``rag`` command as a shell: ``rag --help`` loads no model library, and a missing
extra or dependency is one line naming it (the import graph: tests/test_architecture.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=REPO)


def test_help_imports_no_model_library():
    code = ("import sys\nfrom cli.main import main\nsys.argv = ['rag'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers', "
            "'gradio', 'llama_cpp', 'fastapi') if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    for args in ([], ["--help"], ["ask", "--help"], ["worker", "status", "--help"]):
        out = _run(code, *args)
        assert "Usage" in out.stdout + out.stderr, out.stderr
        assert "HEAVY []" in out.stderr, (args, out.stderr)


def test_a_missing_module_is_one_line_naming_the_extra(tmp_path):
    code = ("import sys\nsys.modules[sys.argv[1]] = None\nfrom cli.main import main\n"
            "sys.argv = ['rag'] + sys.argv[2:]\nmain()\n")
    env_home = ["--corpus", str(tmp_path)]
    out = _run(code, "gradio", "serve", *env_home)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 1 and lines == [
        "Error: the Python module 'gradio' (a dependency of cited-rag) is not installed; "
        "install it with: pip install cited-rag"], out.stderr
    out = _run(code, "uvicorn", "api", "--index", str(tmp_path))
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 1 and len(lines) == 1 and "'cited-rag[server]'" in lines[0]


def test_extras_name_real_extras():
    import tomllib

    from cli.extras import EXTRAS

    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
                 ["optional-dependencies"])
    assert {e for e in EXTRAS.values() if e} <= extras



def test_without_pystemmer_every_command_is_one_line_naming_it(tmp_path):
    """Stemming shapes every index, ranking and check: without PyStemmer nothing runs on
    quietly unstemmed. The library raises DependencyError; the shell prints one line."""
    from index.text import STEMMER_MISSING

    code = ("import sys\nsys.modules['Stemmer'] = None\nfrom cli.main import main\n"
            "sys.argv = ['rag'] + sys.argv[1:]\nmain()\n")
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The ferries were running at noon.", encoding="utf-8")
    for args in (["index", str(corpus), "--index", str(tmp_path / "i")],
                 ["ask", "Were the ferries running?", "--index", str(tmp_path / "i"),
                  "--no-worker"]):
        out = _run(code, *args)
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert out.returncode == 1 and lines == [f"Error: {STEMMER_MISSING}"], out.stderr
