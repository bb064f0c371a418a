"""Building the suite's C test libraries: one helper for every fixture that compiles one."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


def c_library_builder(
    tmp_path_factory: pytest.TempPathFactory, source: Path, name: str = "lib{variant}.so"
) -> Callable[[str], Path]:
    """A builder of ``source`` as a shared library, once per ``-D`` variant.

    ``build(variant)`` compiles with ``-D<variant>`` (``"PLAIN"``: no flag)
    into ``<tmp>/<variant>/<name>`` and returns that path; ``{variant}`` in
    ``name`` is the variant in lower case.  The same flags for every test
    library (``-Wall -Werror``, so a warning is a broken test library, not a
    finding).  A missing compiler fails loudly: it is never a skip.
    """
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail(f"gcc is required to build the test library {source.name}")
    out = tmp_path_factory.mktemp(source.stem)
    built: dict[str, Path] = {}

    def build(variant: str) -> Path:
        if variant not in built:
            folder = out / variant.lower()
            folder.mkdir(exist_ok=True)
            target = folder / name.format(variant=variant.lower())
            flags = [] if variant == "PLAIN" else [f"-D{variant}"]
            subprocess.run(
                [gcc, "-O1", "-Wall", "-Werror", "-shared", "-fPIC", *flags,
                 "-o", str(target), str(source), "-lpthread"],
                check=True,
            )
            built[variant] = target
        return built[variant]

    return build
