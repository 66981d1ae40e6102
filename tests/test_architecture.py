"""The tree's layers, checked from the source: no import cycles, and dependencies point one way.

cli/ and app/ use editing/, export/, evaluation/, training/, which use model/ and data/, which use
core/. pipelines/ never imports gradio or app/, and no library module imports the command line.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A package may import from its own layer or any layer below it.
LAYER = {"core": 0, "data": 1, "model": 2, "editing": 3, "export": 4, "evaluation": 4, "training": 4, "cli": 5}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in (ROOT / "pipelines").rglob("*.py")}
    return {name: {i for i in imports(path) if i in files and i != name} for name, path in files.items()}


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycles():
    edges, state, cycles = graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if nxt.startswith(node + "."):
                continue  # a package's __init__ importing its own submodule is no cycle
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_layers_point_one_way():
    wrong = []
    for module, targets in graph().items():
        here = LAYER.get(package(module))
        for target in targets:
            there = LAYER.get(package(target))
            if here is not None and there is not None and there > here:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_pipelines_never_import_the_ui():
    offenders = [module_name(p) for p in (ROOT / "pipelines").rglob("*.py")
                 if any(i == "gradio" or i.startswith(("gradio.", "app")) for i in imports(p))]
    assert offenders == []


def test_the_library_never_imports_the_command_line():
    offenders = [module_name(p) for p in [*(ROOT / "pipelines").rglob("*.py"), *(ROOT / "app").rglob("*.py")]
                 if package(module_name(p)) not in ("cli", "__main__") and any(i.startswith("pipelines.cli") for i in imports(p))]
    assert offenders == []
