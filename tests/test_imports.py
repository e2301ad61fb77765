"""The shape of the code, read from its imports: no module imports itself back through others,
and the kernel (`simplane.core`) knows no product, so that products plug into it.

Every `import` counts, at the top of a module or inside a function: an import deferred into a
function still ties the two modules together. Imports under `if TYPE_CHECKING:` are left out of
the circle check, since they never run, but the kernel may not name a product even there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import simplane

ROOT = Path(simplane.__file__).parent
# What simplane.core may import from simplane besides itself.
KERNEL_MAY_IMPORT = {"simplane.config"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))
            if "migrations" not in p.relative_to(ROOT).parts}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """The simplane modules `name` imports, each with whether only a type checker sees it."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def resolve(target: str) -> str | None:
        while target and target not in known:  # `from a.b import c`: c may be a name in a.b
            target = target.rpartition(".")[0]
        return target or None

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(
                node.func, "attr", None)) == "import_module" and node.args and isinstance(
                node.args[0], ast.Constant):
            targets = [str(node.args[0].value)]
        for target in targets:
            if target.startswith("simplane"):
                module = resolve(target)
                if module and module != name:
                    found.append((module, typing_only))
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(tree, False)
    return found


def graph() -> dict[str, dict[str, bool]]:
    """module → {imported module: whether only a type checker sees that import}."""
    known = modules()
    edges: dict[str, dict[str, bool]] = {}
    for name, path in known.items():
        out: dict[str, bool] = {}
        for target, typing_only in imports(name, path, set(known)):
            out[target] = out.get(target, True) and typing_only
        edges[name] = out
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def _in_kernel(module: str) -> bool:
    return module == "simplane.core" or module.startswith("simplane.core.")


def test_no_import_circles() -> None:
    run_time = {name: {t for t, typing_only in out.items() if not typing_only}
                for name, out in graph().items()}
    assert circles(run_time) == []


def test_the_kernel_imports_no_product() -> None:
    wrong = sorted(f"{name} imports {target}" for name, out in graph().items()
                   if _in_kernel(name) for target in out
                   if not _in_kernel(target) and target not in KERNEL_MAY_IMPORT)
    assert wrong == []


def test_the_reading_sees_circles_and_deferred_imports() -> None:
    """The check itself: a deferred import and a circle through three modules are found."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    edges = graph()
    assert edges["simplane.cli"]["simplane.app"] is False  # imported inside `serve`
    assert edges["simplane.core.worker"]["simplane.core.runtime"] is True  # TYPE_CHECKING
