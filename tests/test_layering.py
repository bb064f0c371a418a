"""The layers are module boundaries: upper layers import lower ones, never the reverse.

Each module of ``memslice`` has a rank; a module may import only modules of a
strictly lower rank (the allocator's layer diagram, reference/memslice/allocator.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import memslice

RANKS = {
    "errors": 0,
    "tunables": 1,
    "records": 0,
    "sizeclass": 2,
    "config": 2,
    "snapshot": 3,
    "pages": 3,
    "colour": 3,
    "memcheck": 3,
    "contention": 3,
    "rings": 3,
    "slab": 4,
    "large": 4,
    "depot": 5,
    "magazine": 6,
    "consistency": 7,
    "allocator": 8,
    "faults": 9,
    "typed": 9,
    "__init__": 10,
    "calltrace": 0,
    "recorder": 1,
    "visualise": 11,
    "stepthrough": 12,
    "memchunk": 11,
    "__main__": 13,
}

PACKAGE = Path(memslice.__file__).parent


def imported_siblings(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(node.module.split(".")[0])
            else:
                names.update(alias.name for alias in node.names)
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("memslice.")
        ):
            names.add(node.module.split(".")[1])
    return names


def test_every_module_has_a_rank() -> None:
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules <= set(RANKS), f"give these modules a rank: {sorted(modules - set(RANKS))}"


def test_imports_point_downwards() -> None:
    wrong = []
    for path in sorted(PACKAGE.glob("*.py")):
        for name in imported_siblings(path):
            if name in RANKS and RANKS[name] >= RANKS[path.stem]:
                wrong.append(
                    f"{path.stem} (rank {RANKS[path.stem]}) imports {name} (rank {RANKS[name]})"
                )
    assert not wrong, "\n".join(wrong)


def test_every_module_opens_with_a_theory_of_operation() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc, f"{path.name} has no module docstring"
        if path.stem not in {"__main__"}:
            assert "theory of operation" in doc.lower(), (
                f"{path.name}: no theory-of-operation header"
            )


# The conformance suite's folders are its layers (the package docstring of
# memslice_conformance draws them): what it knows about implementations, the
# checks over them, the profiles built from checks, traces and reports, the
# runner, and the front ends.  A module imports only modules of a strictly
# lower rank; modules of one layer may use each other.
SUITE_RANKS = {
    "spec": 0,
    "failures": 0,
    "limits": 0,
    "impl": 1,
    "checks": 2,
    "profiles": 3,
    "reporting": 4,
    "lanes": 5,
    "runner": 6,
    "cli": 7,
    "pytest_plugin": 7,
}


def _suite_layer(module: str) -> str:
    """The layer of ``memslice_conformance.X.Y``: its folder X, or the top-level module X."""
    return module.split(".")[1]


def suite_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("memslice_conformance."):
                names.add(node.module)
            elif node.module == "memslice_conformance":
                names.update(f"memslice_conformance.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("memslice_conformance."))
    return names


def _suite_modules() -> list[Path]:
    import memslice_conformance

    root = Path(memslice_conformance.__file__).parent
    return sorted(p for p in root.rglob("*.py") if p != root / "__init__.py")


def test_suite_layers_point_downwards() -> None:
    import memslice_conformance

    root = Path(memslice_conformance.__file__).parent
    wrong = []
    for path in _suite_modules():
        rel = path.relative_to(root).with_suffix("")
        own = rel.parts[0]
        assert own in SUITE_RANKS, f"give {rel} a layer rank in SUITE_RANKS"
        for imported in suite_imports(path):
            other = _suite_layer(imported)
            if other != own and SUITE_RANKS[other] >= SUITE_RANKS[own]:
                wrong.append(f"{rel} ({own}, rank {SUITE_RANKS[own]}) imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_every_suite_module_opens_with_a_theory_of_operation() -> None:
    for path in _suite_modules():
        if path.name == "__init__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and "theory of operation" in doc.lower(), (
            f"{path}: no theory-of-operation header"
        )
