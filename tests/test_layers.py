"""The package's layers (ARCHITECTURE.md): every import of a project module points down or sideways,
never up, and the modules import each other without a circle. A function-local import is an
arrow too (one that loads its module late, for start-up speed) and obeys the same rule, so none
can hide a circle. Imports made only for type annotations (inside ``if TYPE_CHECKING:``) are not
arrows at run time and are left out."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ecology"

LAYERS = [  # bottom first; a module may import its own layer and those below
    ("errors", "fields", "numerics", "interrupts", "statistics", "progress", "threads", "io.safe", "mesa_core"),
    ("lm",),
    ("kinds",),
    ("scenario",),
    ("core",),
    ("engine", "exact"),
    ("model",),
    ("results",),
    ("plots",),
    ("io",),
    ("sweep", "decompose", "api"),
    ("cli", "app", "__main__", "__init__"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def layer_of(module: str) -> int:
    """The row of a module: its own entry (``io.safe``) when it has one, else its package's (``io``)."""
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        for i, names in enumerate(LAYERS):
            if ".".join(parts[:length]) in names:
                return i
    raise AssertionError(f"module ecology.{module} is in no layer of tests/test_layers.py: add it")


def is_module(name: str) -> bool:
    path = PACKAGE.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def runtime_imports(path: Path) -> list[tuple[str, int]]:
    """(imported project module, line) of every import outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skipped.update(id(n) for n in ast.walk(node))
    out = []
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import (imports are absolute)")
        if isinstance(node, ast.Import):
            targets = [a.name[len("ecology."):] for a in node.names if a.name.startswith("ecology.")]
        elif node.module == "ecology" or (node.module or "").startswith("ecology."):
            base = node.module[len("ecology."):] if node.module != "ecology" else ""
            # ``from ecology.io import safe`` imports the module io.safe; ``from ecology.io.safe import x`` io.safe
            targets = [f"{base}.{a.name}".strip(".") if is_module(f"{base}.{a.name}".strip(".")) else base
                       for a in node.names]
        else:
            continue
        out += [(t, node.lineno) for t in targets if t]
    return out


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_down_or_sideways(path):
    own = module_name(path)
    for target, line in runtime_imports(path):
        assert layer_of(target) <= layer_of(own), f"ecology/{path.relative_to(PACKAGE)}:{line}: imports {target}, a layer above"


def test_no_import_circles():
    graph = {module_name(p): {t for t, _ in runtime_imports(p)} for p in MODULES}
    known = set(graph)

    def resolve(target: str) -> str | None:  # a name imported from a package may be a module or a symbol
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    edges = {m: {r for t in targets if (r := resolve(t)) and r != m} for m, targets in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
