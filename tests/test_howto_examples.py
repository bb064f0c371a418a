"""The implementer's how-to works as written: the skeleton builds, loads and conforms.

docs/howto/write-a-slice-library.md walks a new implementer through two
examples: ``docs/howto/examples/libmyslice.c``, a malloc-backed C library
exporting the five allocation functions (and, with ``-DMYSLICE_CONFIG``,
the three configuration functions), and ``docs/howto/examples/myalloc.py``,
a Python object.  These tests do what the page says, in a scratch folder:
gcc with the documented build line, then the installed
``memslice-conformance`` script in a real subprocess, reading its exit
status and its JSON report.  The prototypes printed in
docs/howto/check-an-allocator.md must be the loader's own
(:data:`memslice_conformance.impl.native.REQUIRED_SYMBOLS` and
``CONFIG_SYMBOLS``), and the skeleton must compile against them.

Testing the tester: a copy of each example with one planted bug is
rejected by the clause it breaks (API-008 for a chain node freed before its
link is read, the page's own example, whose C reproducer must die on the
buggy library and pass on the correct one; CONF-004 for a ``set_config``
that still works after the first allocation; API-002 for a Python
``alloc0`` that does not zero).  The
examples budget is small (``--max-examples 3``) to keep the default run
fast; gcc missing is a failure, never a skip.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from memslice_conformance.impl import native
from memslice_conformance.impl.impls import python_impl
from memslice_conformance.runner import run_conformance

ROOT = Path(__file__).resolve().parent.parent
HOWTO = ROOT / "docs" / "howto"
SKELETON = HOWTO / "examples" / "libmyslice.c"
PY_EXAMPLE = HOWTO / "examples" / "myalloc.py"
#: The build line, word for word as the page and the skeleton's header give it.
BUILD = "gcc -shared -fPIC -O2 -o libmyslice.so libmyslice.c"
#: The bug step 5 of the page plants: free a chain's node before reading its link.
LINK_FIRST = (
    "    memcpy(&next, node + next_offset, sizeof next); /* the link, read first */\n"
    "    g_slice_free1(block_size, node);\n"
)
FREE_FIRST = (
    "    g_slice_free1(block_size, node);\n"
    "    memcpy(&next, node + next_offset, sizeof next);\n"
)
#: The line the planted CONF-004 bug removes (set_config after first use).
FROZEN = "  if (atomic_load_explicit(&in_use, memory_order_acquire))\n    return;\n"
SMALL = "3"


def _cli() -> str:
    script = Path(sys.executable).with_name("memslice-conformance")
    assert script.exists(), f"memslice-conformance is not installed beside {sys.executable}"
    return str(script)


def run_cli(
    *args: str, cwd: Path, pythonpath: str | None = None
) -> tuple[int, str, dict[str, Any]]:
    """Run ``memslice-conformance run ARGS --report`` in ``cwd``; (status, output, report)."""
    env = dict(os.environ, COLUMNS="200")
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    report = cwd / "report.json"
    report.unlink(missing_ok=True)
    done = subprocess.run(
        [_cli(), "run", *args, "--quiet", "--report", str(report)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    output = done.stdout + done.stderr
    assert report.exists(), f"no report written (exit {done.returncode}):\n{output}"
    return done.returncode, output, json.loads(report.read_text())


def statuses(report: dict[str, Any], profile: str) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["clauses"] if c["profile"] == profile}


@pytest.fixture(scope="module")
def gcc() -> str:
    found = shutil.which("gcc")
    assert found, "gcc is needed to build the how-to's C skeleton: apt-get install gcc"
    return found


def build(folder: Path, source: str, *flags: str) -> Path:
    """Build ``source`` as ``libmyslice.so`` in ``folder`` with the documented line."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "libmyslice.c").write_text(source, encoding="utf-8")
    argv = shlex.split(BUILD)
    argv[1:1] = flags  # gcc FLAGS -shared ...
    subprocess.run(argv, cwd=folder, check=True, capture_output=True, text=True)
    return folder / "libmyslice.so"


def documented_prototypes() -> list[str]:
    """The declarations in check-an-allocator.md's "What your library must export"."""
    page = (HOWTO / "check-an-allocator.md").read_text(encoding="utf-8")
    section = page.split("## What your library must export", 1)[1]
    block = re.search(r"```c\n(.*?)```", section, re.S)
    assert block, "the section lost its C block"
    return [line for line in block.group(1).splitlines() if line.endswith(");")]


# ------------------------------------------------------------------ the C skeleton


def test_the_documented_build_line_is_the_one_in_the_page_and_the_skeleton() -> None:
    """The page, the README and the skeleton give the same build line, which the tests use."""
    assert BUILD in (HOWTO / "write-a-slice-library.md").read_text(encoding="utf-8")
    assert BUILD in (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"build:  {BUILD}" in SKELETON.read_text(encoding="utf-8")


def test_the_documented_prototypes_are_the_loaders() -> None:
    """What the docs print is what the loader asks for and names when it is missing."""
    assert documented_prototypes() == [
        *native.REQUIRED_SYMBOLS.values(),
        *native.CONFIG_SYMBOLS.values(),
    ]


@pytest.mark.parametrize("flags", [(), ("-DMYSLICE_CONFIG",)], ids=["five", "config"])
def test_the_skeleton_compiles_cleanly_against_the_documented_prototypes(
    gcc: str, tmp_path: Path, flags: tuple[str, ...]
) -> None:
    """-Wall -Wextra -Werror, with the documented declarations in force: any
    prototype of the skeleton that disagrees with the docs is a compile error."""
    header = tmp_path / "documented.h"
    header.write_text(
        "#include <stddef.h>\n#include <stdint.h>\n" + "\n".join(documented_prototypes()) + "\n"
    )
    subprocess.run(
        [gcc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-include", str(header), *flags,
         "-shared", "-fPIC", "-O2", "-o", str(tmp_path / "libcheck.so"), str(SKELETON)],
        check=True, capture_output=True, text=True,
    )


def test_the_skeleton_exports_the_five_functions_and_the_config_api_only_on_request(
    gcc: str, tmp_path: Path
) -> None:
    """The default build is the minimal library the how-to promises."""
    source = SKELETON.read_text(encoding="utf-8")
    five = build(tmp_path / "five", source)
    config = build(tmp_path / "config", source, "-DMYSLICE_CONFIG")
    import ctypes

    five_lib, config_lib = ctypes.CDLL(str(five)), ctypes.CDLL(str(config))
    for symbol in native.REQUIRED_SYMBOLS:
        assert hasattr(five_lib, symbol) and hasattr(config_lib, symbol), symbol
    for symbol in native.CONFIG_SYMBOLS:
        assert not hasattr(five_lib, symbol), symbol
        assert hasattr(config_lib, symbol), symbol


def test_the_five_function_skeleton_conforms_on_core(gcc: str, tmp_path: Path) -> None:
    """Build, run, read the verdict: exit 0, every core clause passes, config not claimed."""
    build(tmp_path, SKELETON.read_text(encoding="utf-8"))
    status, output, report = run_cli(
        "--impl", "lib:./libmyslice.so", "--max-examples", SMALL, cwd=tmp_path
    )
    assert status == 0, output
    assert report["conforming"] is True
    core = statuses(report, "core")
    assert core and set(core.values()) == {"pass"}, core
    assert "config" not in report["claimed_profiles"]


def test_the_config_skeleton_also_claims_and_passes_config(gcc: str, tmp_path: Path) -> None:
    """With -DMYSLICE_CONFIG the library claims ``config`` and meets CONF-002/004/010/011."""
    build(tmp_path, SKELETON.read_text(encoding="utf-8"), "-DMYSLICE_CONFIG")
    status, output, report = run_cli(
        "--impl", "lib:./libmyslice.so", "--profile", "config", cwd=tmp_path
    )
    assert status == 0, output
    assert "config" in report["claimed_profiles"]
    config = statuses(report, "config")
    assert "CONF-004" in config and set(config.values()) == {"pass"}, config


def test_the_pages_planted_chain_bug_is_rejected_and_reproduced_in_c(
    gcc: str, tmp_path: Path
) -> None:
    """Step 5 of the page, as written: free the node before reading its link.

    The run fails API-008 (exit 1) with a trace; ``replay --emit-c`` turns the
    trace into a C program that dies on the buggy library and exits 0 on the
    correct skeleton.  Built with the config API so that it loads whatever
    the loader asks for.
    """
    source = SKELETON.read_text(encoding="utf-8")
    assert source.count(LINK_FIRST) == 1, "the skeleton changed: update LINK_FIRST"
    buggy = build(tmp_path / "buggy", source.replace(LINK_FIRST, FREE_FIRST), "-DMYSLICE_CONFIG")
    status, output, report = run_cli(
        "--impl", "lib:./libmyslice.so", "--check", "chain_sweep", cwd=buggy.parent
    )
    assert status == 1, output
    assert statuses(report, "core")["API-008"] == "fail"
    assert re.search(r"FAIL chain_sweep \[[^]]*API-008", output), output
    [failed] = [c for c in report["checks"] if c["status"] == "fail"]
    trace = failed["failure"]["trace_file"]
    assert trace, failed

    repro = tmp_path / "repro.c"
    done = subprocess.run(
        [_cli(), "replay", str(buggy.parent / trace), "--emit-c", str(repro)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0 and repro.exists(), done.stdout + done.stderr
    correct = build(tmp_path / "correct", source, "-DMYSLICE_CONFIG")
    outcomes = {}
    for lib in (buggy, correct):
        binary = lib.parent / "repro"
        subprocess.run(
            [gcc, str(repro), "-o", str(binary), f"-L{lib.parent}", "-lmyslice", "-lpthread"],
            check=True, capture_output=True, text=True,
        )
        outcomes[lib] = subprocess.run(
            [str(binary)], env=dict(os.environ, LD_LIBRARY_PATH=str(lib.parent)),
            capture_output=True, text=True, timeout=120, check=False,
        ).returncode
    assert outcomes[buggy] != 0, "the reproducer did not fail on the buggy library"
    assert outcomes[correct] == 0, "the reproducer failed on the correct skeleton"


def test_a_config_skeleton_whose_set_config_works_late_fails_config_only(
    gcc: str, tmp_path: Path
) -> None:
    """Test the tester: set_config changing a value after first use fails CONF-004."""
    source = SKELETON.read_text(encoding="utf-8")
    assert source.count(FROZEN) == 1, "the skeleton changed: update FROZEN"
    build(tmp_path, source.replace(FROZEN, ""), "-DMYSLICE_CONFIG")
    status, output, report = run_cli(
        "--impl", "lib:./libmyslice.so", "--profile", "config", cwd=tmp_path
    )
    assert status == 1, output
    assert statuses(report, "config")["CONF-004"] == "fail"


# ------------------------------------------------------------ the Python example


def test_the_python_example_conforms_through_pythonpath(tmp_path: Path) -> None:
    """``PYTHONPATH=. memslice-conformance run --impl py:myalloc:MyAllocator`` exits 0."""
    shutil.copy(PY_EXAMPLE, tmp_path / "myalloc.py")
    status, output, report = run_cli(
        "--impl", "py:myalloc:MyAllocator", "--max-examples", SMALL,
        cwd=tmp_path, pythonpath=".",
    )
    assert status == 0, output
    assert report["implementation"] == "myalloc"
    core = statuses(report, "core")
    assert core and set(core.values()) == {"pass"}, core
    assert "config" not in report["claimed_profiles"]


def test_the_python_example_is_not_found_without_pythonpath(tmp_path: Path) -> None:
    """Why the page says PYTHONPATH: without it the module cannot be imported (exit 2)."""
    shutil.copy(PY_EXAMPLE, tmp_path / "myalloc.py")
    done = subprocess.run(
        [_cli(), "run", "--impl", "py:myalloc:MyAllocator", "--quiet"],
        cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "myalloc" in done.stdout + done.stderr


def _example_module() -> ModuleType:
    sys.path.insert(0, str(PY_EXAMPLE.parent))
    try:
        return importlib.import_module("myalloc")
    finally:
        sys.path.remove(str(PY_EXAMPLE.parent))


def test_the_configurable_python_example_claims_and_passes_config() -> None:
    """An object with the three config methods claims ``config`` and meets it."""
    myalloc = _example_module()
    report = run_conformance(python_impl(myalloc.MyConfigurableAllocator), profiles=["config"])
    assert "config" in report.claimed
    assert report.conforming, [c.failure for c in report.checks if c.failure]


def test_a_python_example_whose_alloc0_does_not_zero_is_rejected() -> None:
    """Test the tester: the example with its zeroing removed fails API-002."""
    myalloc = _example_module()

    def dirty() -> Any:
        allocator = myalloc.MyAllocator()
        allocator.alloc0 = allocator.alloc  # recycled chunks keep their old bytes
        return allocator

    report = run_conformance(
        python_impl(dirty), max_examples=3, checks=["sizes_sweep"],
        shrink_seconds=0.5, trace_shrink_seconds=1.0,
    )
    assert not report.conforming
    failure = report.checks[0].failure
    assert failure is not None and "API-002" in failure.clauses


# ------------------------------------------------------------ the CLI reference


def test_the_cli_reference_is_generated_from_the_commands_own_parser() -> None:
    """docs/reference/cli.md renders ``memslice_conformance.cli``'s argparse parser.

    The page is generated at build time (sphinx-argparse), so it cannot drift
    from the options; this guards against it being swapped for hand-written
    text or pointed at another parser.
    """
    page = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    directive = re.search(r"```\{argparse\}\n:module: (\S+)\n:func: (\S+)\n", page)
    assert directive, "cli.md no longer generates the reference with sphinx-argparse"
    module, func = directive.groups()
    assert module == "memslice_conformance.cli"
    parser = getattr(importlib.import_module(module), func)()
    assert parser.prog == "memslice-conformance"
    assert parser.parse_args(["run", "--impl", "lib:./libmyslice.so"]).impl == "lib:./libmyslice.so"
