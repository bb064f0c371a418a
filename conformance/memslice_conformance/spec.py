"""The spec as data: clauses, levels and constants tables parsed from ``spec/*.md``.

Rules and theory of operation
-----------------------------
The normative spec is Markdown written for people.  This module reads it
back as records, so that tests can prove the code and the spec agree
(constants, cited clause IDs) and tools can list clauses by level::

    spec/NN-layer.md                         Spec
    ─────────────────────────────            ───────────────────────────────
    ### SLAB-004 [glib-2.74] Title   ──►     clauses["SLAB-004"] = Clause(...)
    normative text ...                          id, prefix, number, level,
                                                title, text, file, line
    <!-- constants: core -->         ──►     tables["core"] = [{"Name": ...,
    | Name | Value | Meaning |                  "Value": "16", ...}, ...]
    | P2ALIGNMENT | 16 | ... |               constants("core")["P2ALIGNMENT"] == 16

Terms.  A *clause heading* is a level-3 heading ``### PREFIX-NNN [LEVEL]
Title``; level-3 headings are reserved for clauses, so any other ``###``
line outside a fenced code block is an error.  A clause's *text* runs to the
next heading of any level.  A *constants table* is the Markdown table that
follows a ``<!-- constants: NAME -->`` marker line.

Invariants (enforced by :func:`parse_spec_text`, which raises
:class:`SpecError` naming the file and line):

* every clause heading is well formed, with a known prefix and level;
* clause IDs are unique across all files, and every clause has text;
* every marker is followed by a table whose rows have as many cells as its
  header, and table names are unique.

Whether each prefix's numbers run from 001 without gaps is a property of the
whole spec, reported by :meth:`Spec.numbering_problems` (withdrawn clauses
stay present, so a correct spec has no gaps at all).

Locating the spec: ``MEMSLICE_SPEC_DIR`` if set, else the ``spec/`` folder of
the source tree this module lives in.  ``python -m memslice_conformance.spec``
prints the clause count per level.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "BINDING_PREFIXES",
    "CITATION_RE",
    "CORE_LEVELS",
    "LEVELS",
    "PREFIXES",
    "SUITE_PREFIXES",
    "Citation",
    "Clause",
    "Spec",
    "SpecError",
    "find_citations",
    "find_cited_ids",
    "load_spec",
    "locate_spec_dir",
    "parse_spec_text",
]

PREFIXES: Final = (
    "API",
    "SIZE",
    "PAGE",
    "SLAB",
    "COLOR",
    "MAG",
    "DEPOT",
    "CONT",
    "EXIT",
    "CONF",
    "DEBUG",
    "GC",
    "LARGE",
    "PY",
    "INTRO",
    "FATAL",
    "LOAD",
    "RUN",
    "COVER",
)
"""Every clause prefix, in the spec's reading order."""

LEVELS: Final = ("MUST", "SHOULD", "MAY", "glib-2.74", "withdrawn")
"""Every level a clause heading may carry."""

CORE_LEVELS: Final = frozenset({"MUST", "SHOULD", "MAY"})
"""The RFC 2119 levels."""

BINDING_PREFIXES: Final = frozenset({"PY", "INTRO", "FATAL"})
"""Prefixes whose RFC 2119 clauses bind the Python binding, not the core contract."""

SUITE_PREFIXES: Final = frozenset({"LOAD", "RUN", "COVER"})
"""Prefixes whose RFC 2119 clauses bind the conformance suite itself, not an allocator."""

SPEC_DIR_ENV: Final = "MEMSLICE_SPEC_DIR"

_PREFIX_ALTERNATION: Final = "|".join(PREFIXES)
CITATION_RE: Final = re.compile(rf"\b(?:{_PREFIX_ALTERNATION})-[0-9]{{3}}\b")
"""A clause ID as cited in code, tests and prose."""

_HEADING_RE: Final = re.compile(
    r"^### (?P<prefix>[A-Z]+)-(?P<number>[0-9]{3}) \[(?P<level>[^\]]+)\] (?P<title>\S.*)$"
)
_ANY_CLAUSE_LEVEL_HEADING_RE: Final = re.compile(r"^#{3,}(?:\s|$)")
_ANY_HEADING_RE: Final = re.compile(r"^#{1,6}(?:\s|$)")
_MARKER_RE: Final = re.compile(r"^<!--\s*constants:\s*(?P<name>\S+)\s*-->\s*$")
_SEPARATOR_CELL_RE: Final = re.compile(r"^:?-{3,}:?$")
_FENCE_RE: Final = re.compile(r"^(```|~~~)")


class SpecError(ValueError):
    """The spec's Markdown breaks one of the rules in the module docstring."""

    def __init__(self, message: str, file: Path | None = None, line: int | None = None) -> None:
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(where + message)
        self.file = file
        self.line = line


@dataclass(frozen=True, slots=True)
class Clause:
    """One clause: its heading's parts, its normative text, and where it is."""

    id: str
    prefix: str
    number: int
    level: str
    title: str
    text: str
    file: Path
    line: int = 0

    @property
    def is_core(self) -> bool:
        """Whether this clause is part of the core contract (MUST/SHOULD/MAY, not binding)."""
        return (
            self.level in CORE_LEVELS
            and self.prefix not in BINDING_PREFIXES
            and self.prefix not in SUITE_PREFIXES
        )

    @property
    def is_withdrawn(self) -> bool:
        """Whether this clause no longer binds (its ID stays reserved)."""
        return self.level == "withdrawn"


@dataclass(frozen=True, slots=True)
class Citation:
    """One occurrence of a clause ID in a source or documentation file."""

    id: str
    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.id}"


@dataclass(frozen=True, slots=True)
class Spec:
    """The parsed spec: clauses by ID (in reading order) and constants tables by name."""

    directory: Path | None
    clauses: dict[str, Clause]
    tables: dict[str, list[dict[str, str]]]

    def by_level(self, level: str) -> list[Clause]:
        """Every clause of ``level`` (one of :data:`LEVELS`), in reading order."""
        if level not in LEVELS:
            raise SpecError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
        return [clause for clause in self.clauses.values() if clause.level == level]

    def by_prefix(self, prefix: str) -> list[Clause]:
        """Every clause with ``prefix``, in reading order."""
        if prefix not in PREFIXES:
            raise SpecError(f"unknown prefix {prefix!r}")
        return [clause for clause in self.clauses.values() if clause.prefix == prefix]

    def core_must_clauses(self) -> list[Clause]:
        """The MUST clauses of the core contract (binding prefixes excluded)."""
        return [c for c in self.clauses.values() if c.level == "MUST" and c.is_core]

    def must_clauses(self) -> list[Clause]:
        """Every MUST clause: the core contract's and the Python binding's."""
        return self.by_level("MUST")

    def table(self, name: str) -> list[dict[str, str]]:
        """The rows of constants table ``name``; :class:`SpecError` if there is none."""
        try:
            return self.tables[name]
        except KeyError:
            known = ", ".join(sorted(self.tables)) or "none"
            raise SpecError(f"no constants table {name!r} (tables: {known})") from None

    def constants(self, table: str = "core") -> dict[str, int]:
        """A ``| Name | Value | ... |`` table as ``{name: integer value}``."""
        rows = self.table(table)
        result: dict[str, int] = {}
        for number, row in enumerate(rows, start=1):
            if "Name" not in row or "Value" not in row:
                raise SpecError(f"table {table!r} has no Name and Value columns")
            name = row["Name"]
            if name in result:
                raise SpecError(f"table {table!r} defines {name!r} twice")
            result[name] = _integer(row["Value"], f"table {table!r} row {number} Value")
        return result

    def integer_rows(self, table: str) -> list[tuple[str, dict[str, int]]]:
        """Each row as ``(first cell, {other column: integer})``: for index-keyed tables."""
        rows = self.table(table)
        result = []
        for number, row in enumerate(rows, start=1):
            cells = list(row.items())
            label = cells[0][1]
            values = {
                column: _integer(cell, f"table {table!r} row {number} column {column!r}")
                for column, cell in cells[1:]
            }
            result.append((label, values))
        return result

    def numbering_problems(self) -> list[str]:
        """Prefixes whose numbers do not run 001, 002, ... without gaps."""
        problems = []
        for prefix in PREFIXES:
            numbers = sorted(c.number for c in self.clauses.values() if c.prefix == prefix)
            expected = list(range(1, len(numbers) + 1))
            if numbers != expected:
                missing = sorted(set(range(1, max(numbers, default=0) + 1)) - set(numbers))
                listed = ", ".join(f"{prefix}-{n:03d}" for n in missing)
                problems.append(f"{prefix}: numbers are not contiguous from 001 (missing {listed})")
        return problems

    def count_by_level(self) -> dict[str, int]:
        """How many clauses each level has, core and binding RFC 2119 levels apart."""
        counts: dict[str, int] = {}
        for clause in self.clauses.values():
            key = clause.level
            if clause.level in CORE_LEVELS:
                kind = "suite" if clause.prefix in SUITE_PREFIXES else "binding"
                key = f"{clause.level} ({'core' if clause.is_core else kind})"
            counts[key] = counts.get(key, 0) + 1
        return counts


def _integer(cell: str, where: str) -> int:
    text = cell.strip().replace("`", "")
    if not re.fullmatch(r"-?[0-9]+", text):
        raise SpecError(f"{where}: {cell!r} is not a plain integer")
    return int(text)


def _split_row(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    return [cell.strip() for cell in body.split("|")]


def _parse_table(
    lines: list[str], start: int, name: str, file: Path
) -> tuple[list[dict[str, str]], int]:
    """Parse the table after a marker at ``lines[start]``; return rows and the next index."""
    index = start + 1
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index + 1 >= len(lines) or not lines[index].lstrip().startswith("|"):
        raise SpecError(f"constants marker {name!r} is not followed by a table", file, start + 1)
    header = _split_row(lines[index])
    separator = _split_row(lines[index + 1])
    if len(separator) != len(header) or not all(_SEPARATOR_CELL_RE.match(c) for c in separator):
        raise SpecError(f"table {name!r} has no header separator row", file, index + 2)
    if len(set(header)) != len(header) or not all(header):
        raise SpecError(f"table {name!r} has empty or repeated column names", file, index + 1)
    rows: list[dict[str, str]] = []
    index += 2
    while index < len(lines) and lines[index].lstrip().startswith("|"):
        cells = _split_row(lines[index])
        if len(cells) != len(header):
            raise SpecError(
                f"table {name!r} row has {len(cells)} cells, header has {len(header)}",
                file,
                index + 1,
            )
        rows.append(dict(zip(header, cells, strict=True)))
        index += 1
    if not rows:
        raise SpecError(f"table {name!r} has no rows", file, start + 1)
    return rows, index


def parse_spec_text(
    text: str,
    file: Path,
    clauses: dict[str, Clause] | None = None,
    tables: dict[str, list[dict[str, str]]] | None = None,
) -> tuple[dict[str, Clause], dict[str, list[dict[str, str]]]]:
    """Parse one spec file's Markdown into ``clauses`` and ``tables`` (updated in place).

    Raises :class:`SpecError` for a malformed clause heading, an unknown
    prefix or level, a duplicate ID (also against the clauses passed in), a
    clause without text, or a malformed or duplicate constants table.
    """
    clauses = {} if clauses is None else clauses
    tables = {} if tables is None else tables
    lines = text.splitlines()
    in_fence = False
    current: tuple[re.Match[str], int, list[str]] | None = None

    def finish() -> None:
        if current is None:
            return
        match, line_number, body = current
        prefix = match["prefix"]
        clause_id = f"{prefix}-{match['number']}"
        normative = "\n".join(body).strip()
        if not normative:
            raise SpecError(f"clause {clause_id} has no text", file, line_number)
        clauses[clause_id] = Clause(
            id=clause_id,
            prefix=prefix,
            number=int(match["number"]),
            level=match["level"],
            title=match["title"].strip(),
            text=normative,
            file=file,
            line=line_number,
        )

    index = 0
    while index < len(lines):
        line = lines[index]
        line_number = index + 1
        if _FENCE_RE.match(line.strip()):
            in_fence = not in_fence
        elif not in_fence and _ANY_HEADING_RE.match(line):
            finish()
            current = None
            if _ANY_CLAUSE_LEVEL_HEADING_RE.match(line):
                current = (_clause_heading(line, file, line_number, clauses), line_number, [])
                index += 1
                continue
        elif not in_fence and (marker := _MARKER_RE.match(line.strip())):
            name = marker["name"]
            if name in tables:
                raise SpecError(f"constants table {name!r} is defined twice", file, line_number)
            rows, after = _parse_table(lines, index, name, file)
            tables[name] = rows
            if current is not None:
                current[2].extend(lines[index:after])
            index = after
            continue
        if current is not None:
            current[2].append(line)
        index += 1
    if in_fence:
        raise SpecError("a fenced code block is never closed", file, len(lines))
    finish()
    return clauses, tables


def _clause_heading(
    line: str, file: Path, line_number: int, clauses: Mapping[str, Clause]
) -> re.Match[str]:
    match = _HEADING_RE.match(line.rstrip())
    if match is None:
        raise SpecError(
            f"malformed clause heading {line.strip()!r}; expected '### PREFIX-NNN [LEVEL] Title'",
            file,
            line_number,
        )
    if match["prefix"] not in PREFIXES:
        raise SpecError(f"unknown clause prefix {match['prefix']!r}", file, line_number)
    if match["number"] == "000":
        raise SpecError("clause numbers start at 001", file, line_number)
    if match["level"] not in LEVELS:
        raise SpecError(
            f"unknown level [{match['level']}]; levels are {', '.join(LEVELS)}", file, line_number
        )
    clause_id = f"{match['prefix']}-{match['number']}"
    if clause_id in clauses:
        first = clauses[clause_id]
        raise SpecError(
            f"duplicate clause ID {clause_id} (first defined at {first.file}:{first.line})",
            file,
            line_number,
        )
    return match


def locate_spec_dir() -> Path:
    """``MEMSLICE_SPEC_DIR``, else the source tree's ``spec/``; :class:`SpecError` if neither."""
    configured = os.environ.get(SPEC_DIR_ENV)
    if configured:
        path = Path(configured)
        if not path.is_dir():
            raise SpecError(f"{SPEC_DIR_ENV}={configured!r} is not a directory")
        return path
    candidate = Path(__file__).resolve().parents[2] / "spec"
    if candidate.is_dir():
        return candidate
    raise SpecError(
        f"cannot find the spec: {candidate} does not exist (this is not a source checkout); "
        f"set {SPEC_DIR_ENV} to the directory holding spec/*.md"
    )


def load_spec(spec_dir: Path | None = None) -> Spec:
    """Parse every ``*.md`` file of ``spec_dir`` (default :func:`locate_spec_dir`)."""
    directory = locate_spec_dir() if spec_dir is None else Path(spec_dir)
    files = sorted(directory.glob("*.md"))
    if not files:
        raise SpecError(f"no *.md files in {directory}")
    clauses: dict[str, Clause] = {}
    tables: dict[str, list[dict[str, str]]] = {}
    for path in files:
        parse_spec_text(path.read_text(encoding="utf-8"), path, clauses, tables)
    return Spec(directory=directory, clauses=clauses, tables=tables)


_CITING_SUFFIXES: Final = frozenset(
    {".py", ".pyi", ".md", ".rst", ".txt", ".c", ".h", ".toml", ".ini", ".cfg", ".json", ".jsonl"}
)
_SKIPPED_DIRS: Final = frozenset(
    {"__pycache__", ".git", ".tox", ".mypy_cache", ".ruff_cache", ".pytest_cache", "_build"}
)


def _files_under(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if (
                    child.is_file()
                    and child.suffix in _CITING_SUFFIXES
                    and not _SKIPPED_DIRS.intersection(child.relative_to(path).parts)
                ):
                    yield child
        elif path.is_file():
            yield path


def find_citations(paths: Iterable[Path]) -> list[Citation]:
    """Every clause ID cited in the given files and (recursively) directories."""
    citations: list[Citation] = []
    for file in _files_under(paths):
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary data cannot cite a clause
        for line_number, line in enumerate(text.splitlines(), start=1):
            citations.extend(
                Citation(match.group(0), file, line_number) for match in CITATION_RE.finditer(line)
            )
    return citations


def find_cited_ids(paths: Iterable[Path]) -> dict[str, set[Path]]:
    """``{clause ID: files citing it}`` over the given files and directories."""
    cited: dict[str, set[Path]] = {}
    for citation in find_citations(paths):
        cited.setdefault(citation.id, set()).add(citation.file)
    return cited


def main(argv: list[str] | None = None) -> int:
    """Print the clause count per level and per prefix of the spec."""
    arguments = sys.argv[1:] if argv is None else argv
    spec = load_spec(Path(arguments[0]) if arguments else None)
    print(f"{len(spec.clauses)} clauses in {spec.directory}")
    for level, count in sorted(spec.count_by_level().items()):
        print(f"  {level:<18} {count:>4}")
    for prefix in PREFIXES:
        print(f"  {prefix:<18} {len(spec.by_prefix(prefix)):>4}")
    problems = spec.numbering_problems()
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
