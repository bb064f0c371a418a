"""The spec is well formed, owns the constants the code uses, and every cited clause exists.

Four groups of tests:

1. Shape: every clause heading parses, IDs are unique, each prefix is
   numbered 001, 002, ... without gaps, each file holds one prefix, RFC 2119
   clauses use their own keyword, and cross-references inside the spec
   resolve.
2. Constants: the spec's tables (``core``, ``size-classes-glib-2.74``,
   ``size-classes-minimal``, ``platforms``) equal what ``memslice.tunables``
   and ``memslice.sizeclass.geometry_for`` compute, row by row.
3. Citations: every clause ID cited in ``reference/``, ``conformance/``,
   ``tests/``, ``docs/``, ``benchmarks/`` and ``README.md`` exists; MUST
   clauses the reference implements are checked by some test.
4. The parser itself, on small synthetic specs ("test the tester").
"""

from __future__ import annotations

import ast
import enum
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import memslice
from memslice.config import SliceConfig
from memslice.sizeclass import Geometry, geometry_for
from memslice.tunables import (
    DEFAULT_COLOR_INCREMENT,
    DEFAULT_WORKING_SET_MSECS,
    GLIB_2_74,
    LARGEALIGNMENT,
    MAX_MAGAZINE_SIZE,
    MAX_STAMP_COUNTER,
    MIN_MAGAZINE_SIZE,
    MINIMAL,
    Tunables,
)
from memslice_conformance.spec import (
    CITATION_RE,
    LEVELS,
    PREFIXES,
    Citation,
    Spec,
    SpecError,
    find_citations,
    find_cited_ids,
    load_spec,
    locate_spec_dir,
    parse_spec_text,
)

ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = ROOT / "spec"
THIS_FILE = Path(__file__).resolve()
CITING_PATHS = [
    ROOT / name for name in ("reference", "conformance", "tests", "docs", "benchmarks", "README.md")
]
MAX_CONTENTION_COUNTER = 256


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(SPEC_DIR)


# --------------------------------------------------------------------------- 1. shape


def test_spec_loads_from_the_source_tree(spec: Spec) -> None:
    """The default location is this checkout's spec/, and it holds every prefix."""
    assert locate_spec_dir().resolve() == SPEC_DIR.resolve()
    assert {clause.prefix for clause in spec.clauses.values()} == set(PREFIXES)


def test_numbering_is_contiguous_from_001(spec: Spec) -> None:
    """IDs are never renumbered or reused: withdrawn clauses stay, so there are no gaps."""
    assert spec.numbering_problems() == []


def test_each_file_holds_one_prefix_in_reading_order(spec: Spec) -> None:
    """One file per layer, numbered in the order of PREFIXES; clauses in number order."""
    prefixes_by_file: dict[str, list[str]] = {}
    for clause in spec.clauses.values():
        prefixes_by_file.setdefault(clause.file.name, []).append(clause.prefix)
    files = sorted(prefixes_by_file)
    assert [set(prefixes_by_file[name]) for name in files] == [{p} for p in PREFIXES]
    for prefix in PREFIXES:
        numbers = [clause.number for clause in spec.by_prefix(prefix)]
        assert numbers == sorted(numbers), f"{prefix} clauses are not in number order"


def test_readme_indexes_every_spec_file() -> None:
    """The README's file table links every spec file, so readers find every layer."""
    readme = (SPEC_DIR / "README.md").read_text(encoding="utf-8")
    for path in sorted(SPEC_DIR.glob("*.md")):
        if path.name != "README.md":
            assert f"]({path.name})" in readme, f"spec/README.md does not link {path.name}"


@pytest.mark.parametrize("level", ["MUST", "SHOULD", "MAY"])
def test_rfc2119_clauses_use_their_keyword(spec: Spec, level: str) -> None:
    """A MUST clause says MUST (and so on): the level and the text cannot drift apart."""
    missing = [c.id for c in spec.by_level(level) if not re.search(rf"\b{level}\b", c.text)]
    assert missing == [], f"[{level}] clauses whose text never says {level}: {missing}"


def test_glib_clauses_state_facts_not_requirements(spec: Spec) -> None:
    """glib-2.74 clauses describe what GLib does; RFC 2119 keywords belong to core clauses."""
    offenders = [
        c.id for c in spec.by_level("glib-2.74") if re.search(r"\b(MUST|SHOULD|MAY)\b", c.text)
    ]
    assert offenders == []


def test_cross_references_inside_the_spec_resolve(spec: Spec) -> None:
    """Every ID the spec cites in its own prose is a clause of the spec."""
    dangling = [
        str(citation)
        for citation in find_citations(sorted(SPEC_DIR.glob("*.md")))
        if citation.id not in spec.clauses
        and not _in_example_heading(citation)  # README shows a made-up heading
    ]
    assert dangling == []


def _in_example_heading(citation: Citation) -> bool:
    return citation.file.name == "README.md" and citation.id == "SLAB-004"


def test_core_contract_is_the_facts_list(spec: Spec) -> None:
    """The core MUST clauses cover each item of the portable contract, and only core files."""
    core_files = {c.file.name for c in spec.core_must_clauses()}
    assert core_files <= {"01-api.md", "09-thread-exit.md", "10-config.md", "11-debug-blocks.md"}
    titles = " | ".join(c.title.lower() for c in spec.core_must_clauses())
    for topic in ("null", "zero", "copy", "overlap", "survive", "aligned", "chain", "thread"):
        assert topic in titles, f"no core MUST clause about {topic!r}"
    # Size-class tolerance is explicitly NOT required (the caller's obligation instead).
    assert "MUST NOT require" in spec.clauses["API-013"].text


# ----------------------------------------------------------------------- 2. constants


def test_core_constants_equal_the_reference(spec: Spec) -> None:
    """SIZE-002..SIZE-006, MAG-003, MAG-008: the `core` table equals the reference's values."""
    geometry = geometry_for(GLIB_2_74)
    pointer = GLIB_2_74.pointer_size
    computed = {
        "P2ALIGNMENT": geometry.p2alignment,
        "SIZEOF_SLAB_INFO": geometry.sizeof_slab_info,
        "NATIVE_MALLOC_PADDING": geometry.native_malloc_padding,
        "SLAB_INFO_SIZE": geometry.slab_info_size,
        "LARGEALIGNMENT": LARGEALIGNMENT,
        "MIN_PAGE_SIZE": geometry.min_page_size,
        "MAX_PAGE_SIZE": geometry.max_page_size,
        "MAX_SLAB_CHUNK_SIZE": geometry.max_slab_chunk_size,
        "MAX_SLAB_INDEX": geometry.n_classes,
        "MIN_MAGAZINE_SIZE": MIN_MAGAZINE_SIZE,
        "MAX_MAGAZINE_SIZE": MAX_MAGAZINE_SIZE,
        "MAX_STAMP_COUNTER": MAX_STAMP_COUNTER,
        "DEFAULT_WORKING_SET_MSECS": DEFAULT_WORKING_SET_MSECS,
        "DEFAULT_COLOR_INCREMENT": DEFAULT_COLOR_INCREMENT,
        # ThreadMemory: two pointers, then two arrays of {chunks, count} per class.
        "SIZEOF_THREAD_MEMORY": 2 * pointer + 2 * geometry.n_classes * 2 * pointer,
    }
    constants = spec.constants("core")
    smc = {"SMC_TRUNK_COUNT", "SMC_BRANCH_COUNT"}
    assert set(constants) == set(computed) | smc
    assert {name: constants[name] for name in computed} == computed


def test_debug_table_constants_match_the_reference(spec: Spec) -> None:
    """DEBUG-010: the reference keeps a dict, not GLib's table, but names the same shape."""
    constants = spec.constants("core")
    trunks, branches = constants["SMC_TRUNK_COUNT"], constants["SMC_BRANCH_COUNT"]
    described = memslice.memcheck.__doc__ or ""
    assert f"{trunks} trunks of {branches}" in described
    assert f"{trunks}" in spec.clauses["DEBUG-010"].text
    assert f"{branches} × 2039" in spec.clauses["DEBUG-010"].text


def _size_class_rows(geometry: Geometry) -> list[tuple[str, dict[str, int]]]:
    return [
        (
            str(size_class.index),
            {
                "chunk": size_class.chunk_size,
                "page": size_class.page_size,
                "chunks/slab": size_class.chunks_per_slab,
                "padding": size_class.padding,
                "threshold": geometry.threshold(size_class.index, 0),
                "threshold at cc=256": geometry.threshold(size_class.index, MAX_CONTENTION_COUNTER),
            },
        )
        for size_class in geometry.classes
    ]


@pytest.mark.parametrize(
    ("table", "tunables"),
    [("size-classes-glib-2.74", GLIB_2_74), ("size-classes-minimal", MINIMAL)],
)
def test_size_class_tables_equal_the_reference(spec: Spec, table: str, tunables: Tunables) -> None:
    """SIZE-010, SIZE-012: each size-class table equals geometry_for(profile), cell by cell."""
    assert spec.integer_rows(table) == _size_class_rows(geometry_for(tunables))


def test_size_class_table_obeys_its_own_formulas(spec: Spec) -> None:
    """SIZE-005..SIZE-008, MAG-004, CONT-004: each row obeys the formulas, reference aside."""
    core = spec.constants("core")
    info, max_page = core["SLAB_INFO_SIZE"], core["MAX_PAGE_SIZE"]
    rows = spec.integer_rows("size-classes-glib-2.74")
    assert len(rows) == core["MAX_SLAB_INDEX"]
    for label, row in rows:
        chunk = row["chunk"]
        assert chunk == (int(label) + 1) * core["P2ALIGNMENT"]
        page = row["page"]
        assert page >= max(8 * chunk + info, core["MIN_PAGE_SIZE"]) and page & (page - 1) == 0
        assert page // 2 < 8 * chunk + info or page == core["MIN_PAGE_SIZE"]
        assert divmod(page - info, chunk) == (row["chunks/slab"], row["padding"])
        base = max(core["MIN_MAGAZINE_SIZE"], max_page // max(5 * chunk, 5 * 32))
        assert row["threshold"] == base
        assert row["threshold at cc=256"] == max(base, core["MAX_MAGAZINE_SIZE"] * 64 // chunk)
    assert rows[-1][1]["chunk"] <= core["MAX_SLAB_CHUNK_SIZE"] < rows[-1][1]["chunk"] + 16


def _example_ranges(text: str) -> list[tuple[int, int, int]]:
    """``a → v``, ``a and b → v`` and ``a to b → v`` in a clause's Example, as (low, high, v)."""
    example = text[text.index("Example") :]
    found = []
    for low, joiner, high, value in re.findall(r"(\d+)(?: (to|and) (\d+))? → (\d+)", example):
        if joiner == "and":
            found += [(int(low), int(low), int(value)), (int(high), int(high), int(value))]
        else:
            found.append((int(low), int(high or low), int(value)))
    return found


@pytest.mark.parametrize(("clause_id", "column"), [("SIZE-007", "page"), ("MAG-004", "threshold")])
def test_worked_examples_agree_with_the_table(spec: Spec, clause_id: str, column: str) -> None:
    """SIZE-007, MAG-004: the prose examples say what the size-class table says."""
    by_chunk = {row["chunk"]: row for _, row in spec.integer_rows("size-classes-glib-2.74")}
    ranges = _example_ranges(spec.clauses[clause_id].text)
    assert len(ranges) >= 6
    for low, high, value in ranges:
        chunks = [chunk for chunk in by_chunk if low <= chunk <= high]
        assert chunks and all(by_chunk[c][column] == value for c in chunks), (low, high, value)
    if clause_id == "SIZE-007":  # the example's ranges cover every class
        covered = {c for low, high, _ in ranges for c in by_chunk if low <= c <= high}
        assert covered == set(by_chunk)


def test_contention_triples_in_the_example_agree_with_the_table(spec: Spec) -> None:
    """CONF-010: the quoted get_config_state triples are [chunk, 0, threshold] of the table."""
    rows = dict(spec.integer_rows("size-classes-glib-2.74"))
    triples = re.findall(
        r"(\d+) → `\[(\d+), (\d+), (\d+)\]`", spec.clauses["CONF-010"].text.replace("`ix` ", "")
    )
    assert len(triples) == 4
    for index, chunk, counter, threshold in triples:
        row = rows[index]
        assert (int(chunk), int(counter), int(threshold)) == (row["chunk"], 0, row["threshold"])


def test_colour_examples_agree_with_the_table(spec: Spec) -> None:
    """COLOR-002, COLOR-004: chunk 112's padding and colours; the classes named by padding."""
    by_chunk = {row["chunk"]: row for _, row in spec.integer_rows("size-classes-glib-2.74")}
    padding = by_chunk[112]["padding"]
    colour_text = " ".join(spec.clauses["COLOR-002"].text.split())
    assert f"padding {padding}" in colour_text
    assert ", ".join(str((accu * 16) % padding) for accu in range(7)) in colour_text
    zero_text = " ".join(spec.clauses["COLOR-004"].text.split())
    zero_padding = {chunk for chunk, row in by_chunk.items() if row["padding"] == 0}
    assert {int(n) for n in re.findall(r"chunk (\d+)", zero_text)} == zero_padding
    sixteen = re.search(r"chunks ([\d, ]+ and \d+)", zero_text)
    assert sixteen is not None
    named = [int(n) for n in re.findall(r"\d+", sixteen.group(1))]
    assert named and all(by_chunk[chunk]["padding"] == 16 for chunk in named)


def test_platform_rows_equal_the_reference(spec: Spec) -> None:
    """SIZE-011: each `platforms` row equals geometry_for(Tunables(pointer, page, memalign))."""
    rows = spec.integer_rows("platforms")
    assert len(rows) >= 5
    for label, row in rows:
        geometry = geometry_for(
            Tunables(
                name=label,
                pointer_size=row["pointer_size"],
                sys_page_size=row["sys_page_size"],
                have_memalign=bool(row["have_memalign"]),
            )
        )
        computed = {
            "pointer_size": row["pointer_size"],
            "sys_page_size": row["sys_page_size"],
            "have_memalign": row["have_memalign"],
            "P2ALIGNMENT": geometry.p2alignment,
            "SLAB_INFO_SIZE": geometry.slab_info_size,
            "min_page_size": geometry.min_page_size,
            "max_page_size": geometry.max_page_size,
            "MAX_SLAB_CHUNK_SIZE": geometry.max_slab_chunk_size,
            "MAX_SLAB_INDEX": geometry.n_classes,
            "largest chunk": geometry.largest_slab_request,
            "threshold ix 0": geometry.threshold(0, 0),
        }
        assert row == computed, label


def test_x86_64_platform_row_agrees_with_the_core_table(spec: Spec) -> None:
    """The two tables cannot drift apart on the platform they share."""
    core = spec.constants("core")
    label, row = spec.integer_rows("platforms")[0]
    assert label == "x86_64"
    for name in ("P2ALIGNMENT", "SLAB_INFO_SIZE", "MAX_SLAB_CHUNK_SIZE", "MAX_SLAB_INDEX"):
        assert row[name] == core[name], name
    assert (row["min_page_size"], row["max_page_size"]) == (
        core["MIN_PAGE_SIZE"],
        core["MAX_PAGE_SIZE"],
    )


def test_config_keys_equal_slice_config(spec: Spec) -> None:
    """CONF-002, PY-012: the key values the spec states are SliceConfig's."""
    assert issubclass(SliceConfig, enum.IntEnum)
    stated = dict(re.findall(r"`([A-Z_]+)` = ([0-9])", spec.clauses["CONF-002"].text))
    assert {name: int(value) for name, value in stated.items()} == {
        member.name: member.value for member in SliceConfig
    }


@pytest.mark.parametrize("environ", [{}, {"G_SLICE": "always-malloc"}])
def test_get_config_answers_the_spec_defaults(spec: Spec, environ: dict[str, str]) -> None:
    """CONF-006: keys 0..7 give 0, 0, 0, working set, increment, MAX_SLAB_INDEX, 0, 0."""
    core = spec.constants("core")
    expected = [0, 0, 0, core["DEFAULT_WORKING_SET_MSECS"], core["DEFAULT_COLOR_INCREMENT"]]
    expected += [core["MAX_SLAB_INDEX"], 0, 0]
    allocator = memslice.Allocator(GLIB_2_74, environ=environ)
    try:
        allocator.free1(16, allocator.alloc(16))  # initialise: G_SLICE is now applied
        assert [allocator.get_config(key) for key in range(8)] == expected
    finally:
        allocator.close()


# ----------------------------------------------------------------------- 3. citations


def undefined_citations(spec: Spec, paths: list[Path]) -> list[str]:
    """``file:line: ID`` for every citation of an ID the spec does not define."""
    return [
        f"{_shown(citation.file)}:{citation.line}: {citation.id}"
        for citation in find_citations(paths)
        if citation.id not in spec.clauses and citation.file.resolve() != THIS_FILE
    ]


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def test_every_cited_clause_exists(spec: Spec) -> None:
    """A typo in a clause ID anywhere in code, tests or docs fails here, with file:line."""
    paths = [path for path in CITING_PATHS if path.exists()]
    offenders = undefined_citations(spec, paths)
    assert not offenders, "clause IDs cited but not defined in spec/:\n" + "\n".join(offenders)


def test_citation_check_catches_a_typo(spec: Spec, tmp_path: Path) -> None:
    """Test the tester: an undefined ID is reported with its file and line."""
    source = tmp_path / "module.py"
    bad_id = "SLAB-" + "999"  # assembled so this file itself cites nothing undefined
    source.write_text(f'"""Fine (SLAB-003)."""\n\n# wrong: {bad_id}\n', encoding="utf-8")
    assert undefined_citations(spec, [tmp_path]) == [f"{source}:3: {bad_id}"]


def _must_clauses_cited_by_reference(spec: Spec) -> set[str]:
    cited = find_cited_ids([ROOT / "reference"])
    return {c.id for c in spec.must_clauses() if c.id in cited}


def _ids_cited_by_checks() -> set[str]:
    """IDs cited by tests or conformance checks.

    In this file only the docstrings of test functions count: the synthetic
    specs below mention IDs that they do not check.
    """
    cited = find_cited_ids([ROOT / "tests", ROOT / "conformance"])
    ids = {clause_id for clause_id, files in cited.items() if files - {THIS_FILE}}
    tree = ast.parse(THIS_FILE.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            ids.update(CITATION_RE.findall(ast.get_docstring(node) or ""))
    return ids


AWAITING_TESTS: frozenset[str] = frozenset({"FATAL-003", "INTRO-001", "INTRO-002", "PY-014"})
"""MUST clauses the reference implements (cites) that no test cited yet: a ratchet.

Remove an ID once a test or conformance check cites it.  (Stale entries are
not a failure while several people add tests in parallel; the FULL CHECK
below retires this list.)  Never add an ID without telling the spec's
maintainer."""


def test_must_clauses_implemented_by_the_reference_are_checked(spec: Spec) -> None:
    """Every MUST clause the reference cites is cited by a test or a conformance check.

    The full rule is "every MUST clause is cited by at least one test or
    conformance check".  While the conformance suite is being written, this
    asserts it only for the MUST clauses the reference code already cites
    (implemented ones), less the ratchet list AWAITING_TESTS.
    FULL CHECK, once the conformance suite is done: replace ``scope`` with
    ``{c.id for c in spec.must_clauses()}`` and empty AWAITING_TESTS.
    """
    scope = _must_clauses_cited_by_reference(spec)
    checked = _ids_cited_by_checks()
    unchecked = sorted(scope - checked - AWAITING_TESTS)
    assert not unchecked, f"MUST clauses implemented but cited by no test: {unchecked}"


# -------------------------------------------------------------------- 4. the parser


def _parse(text: str, name: str = "01-x.md") -> Spec:
    clauses, tables = parse_spec_text(text, Path(name))
    return Spec(directory=None, clauses=clauses, tables=tables)


GOOD = """# Title

### GC-001 [MUST] First clause

Text that MUST hold.

### GC-002 [glib-2.74] Second clause

What GLib does.

<!-- constants: tiny -->
| Name | Value | Meaning |
|---|---:|---|
| ONE | 1 | the first |
| TWO | `2` | the second |

Note: after the table.
"""


def test_parser_reads_clauses_and_tables() -> None:
    parsed = _parse(GOOD)
    assert list(parsed.clauses) == ["GC-001", "GC-002"]
    first = parsed.clauses["GC-001"]
    assert (first.prefix, first.number, first.level, first.title) == (
        "GC",
        1,
        "MUST",
        "First clause",
    )
    assert first.text == "Text that MUST hold."
    assert first.line == 3 and first.is_core and not first.is_withdrawn
    assert parsed.clauses["GC-002"].text.endswith("Note: after the table.")
    assert parsed.tables["tiny"][0] == {"Name": "ONE", "Value": "1", "Meaning": "the first"}
    assert parsed.constants("tiny") == {"ONE": 1, "TWO": 2}
    assert [c.id for c in parsed.core_must_clauses()] == ["GC-001"]
    assert [c.id for c in parsed.by_level("glib-2.74")] == ["GC-002"]


@pytest.mark.parametrize(
    "heading",
    [
        "### GC-001 MUST Missing brackets",
        "### GC-1 [MUST] Two few digits",
        "### GC-0001 [MUST] Too many digits",
        "### GC-001 [must] Lower-case level",
        "### GC-001 [REQUIRED] Unknown level",
        "### XYZ-001 [MUST] Unknown prefix",
        "### GC-000 [MUST] Number zero",
        "### GC-001 [MUST]",
        "#### GC-001 [MUST] Too deep",
        "### Not a clause at all",
    ],
)
def test_parser_rejects_malformed_headings(heading: str) -> None:
    with pytest.raises(SpecError, match=r"01-x\.md:3: "):
        _parse(f"# T\n\n{heading}\n\nText.\n")


def test_parser_rejects_duplicate_ids_within_and_across_files() -> None:
    with pytest.raises(SpecError, match="duplicate clause ID GC-001"):
        _parse("### GC-001 [MUST] A\n\nMUST.\n\n### GC-001 [MAY] B\n\nMAY.\n")
    clauses, tables = parse_spec_text("### GC-001 [MUST] A\n\nMUST.\n", Path("a.md"))
    with pytest.raises(SpecError, match=r"b\.md:1: duplicate clause ID GC-001 .*a\.md:1"):
        parse_spec_text("### GC-001 [MUST] A\n\nMUST.\n", Path("b.md"), clauses, tables)


def test_parser_rejects_a_clause_without_text() -> None:
    with pytest.raises(SpecError, match="GC-001 has no text"):
        _parse("### GC-001 [MUST] Empty\n\n## Next chapter\n")


def test_parser_ignores_headings_inside_code_fences() -> None:
    parsed = _parse("```text\n### whatever\n```\n\n### GC-001 [MAY] Real\n\nMAY.\n")
    assert list(parsed.clauses) == ["GC-001"]
    with pytest.raises(SpecError, match="never closed"):
        _parse("```\n### GC-001 [MAY] Hidden\n")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("<!-- constants: t -->\n\nJust prose.\n", "not followed by a table"),
        ("<!-- constants: t -->\n| A | B |\n| x | y |\n", "no header separator"),
        ("<!-- constants: t -->\n| A | B |\n|---|---|\n| 1 |\n", "row has 1 cells"),
        ("<!-- constants: t -->\n| A | A |\n|---|---|\n| 1 | 2 |\n", "repeated column"),
        ("<!-- constants: t -->\n| A | B |\n|---|---|\n\n", "no rows"),
        (
            "<!-- constants: t -->\n| A |\n|---|\n| 1 |\n\n<!-- constants: t -->\n| A |\n|---|\n",
            "defined twice",
        ),
    ],
)
def test_parser_rejects_malformed_tables(table: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _parse(table)


def test_constants_require_plain_integers_and_name_value_columns() -> None:
    bad = _parse("<!-- constants: t -->\n| Name | Value |\n|---|---|\n| X | 0x10 |\n")
    with pytest.raises(SpecError, match="not a plain integer"):
        bad.constants("t")
    other = _parse("<!-- constants: t -->\n| ix | chunk |\n|---|---|\n| 0 | 16 |\n")
    with pytest.raises(SpecError, match="no Name and Value"):
        other.constants("t")
    assert other.integer_rows("t") == [("0", {"chunk": 16})]
    with pytest.raises(SpecError, match="no constants table 'missing'"):
        other.constants("missing")


def test_numbering_problems_name_the_gap_and_withdrawn_clauses_fill_it() -> None:
    gap = _parse("### GC-001 [MAY] A\n\nMAY.\n\n### GC-003 [MAY] C\n\nMAY.\n")
    assert gap.numbering_problems() == ["GC: numbers are not contiguous from 001 (missing GC-002)"]
    filled = _parse(
        "### GC-001 [MAY] A\n\nMAY.\n\n### GC-002 [withdrawn] B\n\nReplaced by GC-003.\n"
        "\n### GC-003 [MAY] C\n\nMAY.\n"
    )
    assert filled.numbering_problems() == []
    assert filled.clauses["GC-002"].is_withdrawn and not filled.clauses["GC-002"].is_core


def test_levels_and_scopes() -> None:
    parsed = _parse("### PY-001 [MUST] Binding\n\nMUST.\n\n### API-001 [MUST] Core\n\nMUST.\n")
    assert [c.id for c in parsed.core_must_clauses()] == ["API-001"]
    assert [c.id for c in parsed.must_clauses()] == ["PY-001", "API-001"]
    with pytest.raises(SpecError, match="unknown level"):
        parsed.by_level("REQUIRED")


def test_find_citations_reports_files_and_lines(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    one = tmp_path / "pkg" / "a.py"
    one.write_text("x = 1  # SLAB-003, MAG-004\n\n'''PY-001..PY-006'''\n", encoding="utf-8")
    two = tmp_path / "b.md"
    two.write_text("See SLAB-003. Not IDs: SLAB-3, XSLAB-003, SLAB-0031.\n", encoding="utf-8")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "c.py").write_text("GC-001\n", encoding="utf-8")
    assert [str(c) for c in find_citations([tmp_path])] == [
        f"{two}:1: SLAB-003",
        f"{one}:1: SLAB-003",
        f"{one}:1: MAG-004",
        f"{one}:3: PY-001",
        f"{one}:3: PY-006",
    ]
    assert find_cited_ids([tmp_path])["SLAB-003"] == {one, two}


def test_locate_spec_dir_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "01-api.md").write_text("### API-001 [MUST] A\n\nMUST.\n", encoding="utf-8")
    monkeypatch.setenv("MEMSLICE_SPEC_DIR", str(tmp_path))
    assert locate_spec_dir() == tmp_path
    assert list(load_spec().clauses) == ["API-001"]
    monkeypatch.setenv("MEMSLICE_SPEC_DIR", str(tmp_path / "absent"))
    with pytest.raises(SpecError, match="is not a directory"):
        locate_spec_dir()
    with pytest.raises(SpecError, match=r"no \*\.md files"):
        load_spec(tmp_path / "pkg")


@given(
    prefix=st.sampled_from(PREFIXES),
    number=st.integers(1, 999),
    level=st.sampled_from(LEVELS),
    title=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#"),
        min_size=1,
        max_size=30,
    ),
)
def test_any_well_formed_heading_round_trips(
    prefix: str, number: int, level: str, title: str
) -> None:
    clause_id = f"{prefix}-{number:03d}"
    parsed = _parse(f"### {clause_id} [{level}] {title}\n\nSome text.\n")
    clause = parsed.clauses[clause_id]
    assert (clause.prefix, clause.number, clause.level, clause.title) == (
        prefix,
        number,
        level,
        title,
    )
