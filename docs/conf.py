"""Sphinx configuration for the memslice docs.

Built with ``tox -e docs`` (``sphinx-build -W -n``: warnings are errors and
every cross-reference must resolve), offline: no intersphinx, no remote
assets.  ``_ext/memslice_docs.py`` renders the spec and draws every picture
from the live reference at build time.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
# The reference is normally installed (pip install -e .); fall back to the tree.
sys.path.insert(1, str(HERE.parent / "reference"))
sys.path.insert(2, str(HERE.parent / "benchmarks"))

project = "memslice"
author = "The memslice developers"
copyright = "the memslice developers; MIT licence"
release = version = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinxarg.ext",  # docs/reference/cli.md: generated from the CLI's argparse parser
    "memslice_docs",
    "memslice_results",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated/*.txt", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "deflist"]
# The spec's chapters go from "#" straight to "###" clause headings in places;
# that is the spec's house style, not a docs error.
suppress_warnings = ["myst.header"]

nitpicky = True
# Standard-library and ctypes names in signatures: no intersphinx (offline build).
nitpick_ignore_regex = [
    ("py:class", r"(collections\.abc|typing|ctypes|_ctypes|threading|enum|io|pathlib)\..*"),
    ("py:class", r"(Mapping|Sequence|Iterable|Callable|TextIO|Path|T|_CData|ConfigWarning)"),
    ("py:class", r"memslice\.(pages|large|contention)\..*"),
    ("py:class", r"(PageSource|MallocSource|ContentionProbe|ConsistencyError)"),
    ("py:obj", r"memslice\..*\.T"),
    ("py:class", r"memslice(\.typed)?\.T"),
    # Modules of the conformance suite that these docs do not (yet) render.
    ("py:mod", r"memslice_conformance\..*"),
    ("py:class", r"memslice_conformance\..*"),
    # Sphinx splits a dataclass field's default_factory signature at the comma.
    ("py:class", r"dict\[str"),
]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": False}

# Furo: made for long technical docs. It gives every page previous/next links
# (in the order of the toctrees, which is the learning path), a readable line
# length, tables and code blocks that scroll inside their own box, and a dark
# mode that follows the reader's system setting (with a toggle).
html_theme = "furo"
html_title = "memslice"
html_static_path = ["_static"]
html_css_files = ["memslice.css"]
html_theme_options = {
    "navigation_with_keys": True,
    "top_of_page_buttons": [],
}
html_show_sourcelink = False
html_copy_source = False
pygments_style = "sphinx"
pygments_dark_style = "monokai"
