"""The shells sit above the pipeline: the import graph between the packages has no cycle,
``rag --help`` loads no model library, and a missing extra is one line naming it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("rag", "index", "ui", "eval", "cli")


def imported_packages(path: Path) -> set[str]:
    """First-party top-level packages a module imports, at any depth of its code
    (imports inside functions count: they run when the function does)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in PACKAGES}
    return found


def package_graph() -> dict[str, set[str]]:
    """package -> the other packages its modules import. ``__main__.py`` files are entry
    scripts that no module imports, so they are not edges of the graph."""
    graph: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for pkg in PACKAGES:
        for f in (REPO / pkg).rglob("*.py"):
            if f.name != "__main__.py":
                graph[pkg] |= imported_packages(f) - {pkg}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        state[n] = 2
        path.pop()
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert imported_packages(REPO / "rag" / "pipeline.py") >= {"index"}


def test_no_import_cycle_and_the_pipeline_imports_no_shell():
    graph = package_graph()
    assert find_cycle(graph) is None, graph
    assert not graph["rag"] & {"ui", "eval", "cli"}
    assert not graph["index"] & {"rag", "ui", "eval", "cli"}
    assert graph["cli"] >= {"rag", "ui", "eval"}


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
