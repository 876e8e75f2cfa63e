"""The package's layering: every import runs downward, from the CLI through the offline jobs to the flat
inference core, and no modules import each other in a cycle. Read from the source, so a lazy import inside
a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import aidetect

PACKAGE = Path(aidetect.__file__).parent
# Lowest first: a module may import its own layer or a lower one, never a higher one. The flat modules
# (the inference core) are layer 0; `python -m aidetect` stands with the CLI.
LAYERS = {"provenance": 0, "evaluation": 1, "render": 2, "training": 3, "corpus": 4, "synth": 4, "cli": 5,
          "__main__": 5}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_nodes(tree: ast.AST):
    """Every node, except those under `if TYPE_CHECKING:` (imports for type hints only never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *runtime_nodes(child)])
            continue
        yield node
        yield from runtime_nodes(node)


def imports_of(path: Path) -> set[str]:
    """The aidetect modules `path` imports when it runs, resolved to module names (a name imported from a
    package counts as the submodule when one exists)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "aidetect":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if module_path(sub) else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "aidetect")
    return {m for m in found if m != name}


def module_path(name: str) -> Path | None:
    base = PACKAGE.parent.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def layer(name: str) -> int:
    parts = name.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_every_import_runs_downward():
    upward = [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
              for a, targets in graph().items() for b in targets if b != "aidetect" and layer(b) > layer(a)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return path + [node, target]
            if target not in state and (cycle := visit(target, path + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start, [])):
            raise AssertionError("import cycle: " + " -> ".join(cycle[cycle.index(cycle[-1]):]))


def test_the_checks_see_imports():
    """The parser finds what a module really imports (so the two tests above cannot pass by seeing nothing)."""
    edges = graph()
    assert "aidetect.evaluation.metrics" in edges["aidetect.training.head_fit"]
    assert "aidetect.engine" in edges["aidetect.cli.common"]  # a lazy import, inside a function
    assert "aidetect.render.corpus" in edges["aidetect.corpus.card"]
    assert "aidetect.engine" not in edges["aidetect.cli.scan"]  # only under TYPE_CHECKING there
