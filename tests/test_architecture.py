"""The shape of the code, read from its import graph: the library (``index``, ``rag``,
``eval``) imports no shell (``cli``, ``serve``, ``ui``) and no shell framework, and no two
modules import each other, however indirectly. Imports made inside functions count:
they run when the function does.

The graph is read with ``ast`` from every module of the six packages; nothing is
imported to build it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIBRARY = ("index", "rag", "eval")
SHELLS = ("cli", "serve", "ui")
PACKAGES = LIBRARY + SHELLS
# the frameworks the shells are written in: the library imports none of them
FRAMEWORKS = {"typer", "click", "uvicorn", "fastapi", "gradio", "gradio_client",
              "starlette"}
MAX_LINES = 400  # a module has fewer lines
MAX_MODULES = 15  # a folder holds at most this many modules
PIPELINE_LINES = 250  # the Pipeline class keeps the order of the steps, nothing else


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the six packages."""
    found = {}
    for pkg in PACKAGES:
        for f in sorted((REPO / pkg).rglob("*.py")):
            parts = list(f.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = f
    return found


def imports_of(name: str, path: Path, modules: set[str]) -> tuple[set[str], set[str]]:
    """(the first-party modules, the other top-level packages) that module ``name``
    imports anywhere in its code. ``from a.b import c`` is an import of ``a.b.c`` when
    that is a module, else of ``a.b``; a name that is no module counts as the nearest
    module above it."""
    def nearest(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    first, other = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                found = nearest(target)
                if found and found != name:
                    first.add(found)
            else:
                other.add(target.split(".")[0])
    return first, other


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """module -> the first-party modules it imports, and module -> other packages."""
    files = module_files()
    graph, external = {}, {}
    for name, path in files.items():
        graph[name], external[name] = imports_of(name, path, set(files))
    return graph, external


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative): each is a set of modules that import each other, at some remove."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def package_of(module: str) -> str:
    return module.split(".")[0]


def test_the_graph_reader_sees_imports_inside_functions_and_finds_circles(tmp_path):
    mod = tmp_path / "m.py"
    mod.write_text("def f():\n    from rag.pipeline import Pipeline\n    import typer\n")
    first, other = imports_of("eval.m", mod, {"rag", "rag.pipeline", "eval", "eval.m"})
    assert first == {"rag.pipeline"} and other == {"typer"}
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
    graph, _ = import_graph()
    assert "rag.pipeline" in graph["serve.worker_server"] | graph["cli.common"]


def test_the_library_imports_no_shell_and_no_shell_framework():
    graph, external = import_graph()
    wrong = {m: sorted({d for d in graph[m] if package_of(d) in SHELLS}
                       | (external[m] & FRAMEWORKS))
             for m in graph if package_of(m) in LIBRARY}
    assert not {m: d for m, d in wrong.items() if d}, wrong


def test_no_module_imports_itself_through_others():
    graph, _ = import_graph()
    found = circles(graph)
    assert not found, f"import circles: {found}"


def test_no_circle_between_packages_and_the_shells_sit_on_top():
    graph, _ = import_graph()
    packages: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for module, deps in graph.items():
        packages[package_of(module)] |= {package_of(d) for d in deps} - {package_of(module)}
    assert not circles(packages), packages
    assert not packages["index"] & {"rag", "eval", *SHELLS}
    assert packages["cli"] >= {"rag", "eval", "serve", "ui"}


def test_modules_are_short_and_folders_small():
    files = module_files()
    long = {m for m, f in files.items()
            if len(f.read_text(encoding="utf-8").splitlines()) >= MAX_LINES}
    assert not long, sorted(long)
    folders: dict[Path, int] = {}
    for f in files.values():
        folders[f.parent] = folders.get(f.parent, 0) + 1
    full = {".".join(d.relative_to(REPO).parts) for d, n in folders.items()
            if n > MAX_MODULES}
    assert not full, sorted(full)


def test_the_pipeline_keeps_the_order_of_the_steps_only():
    tree = ast.parse((REPO / "rag" / "pipeline.py").read_text(encoding="utf-8"))
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Pipeline"]
    assert cls.end_lineno - cls.lineno + 1 <= PIPELINE_LINES
