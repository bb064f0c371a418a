"""Record a real program's g_slice calls with an LD_PRELOAD shim (INTRO-006).

Rules and theory of operation
-----------------------------
A small C shim (``native/slicetrace.c``, shipped with this package) defines the
five slice entry points a program can call.  It is compiled with the system
``gcc`` on first use and cached by the hash of its source; ``record`` runs
the program with the shim preloaded, so the dynamic linker binds the
program's calls to the shim, which logs each one and forwards it to GLib::

    program ──PLT──▶ slicetrace.so ──dlsym(RTLD_NEXT)──▶ libglib g_slice_*
    libgobject, libgio ──PLT──▶ slicetrace.so        (seen too)
    libglib's own GList, GHashTable ... ──direct──▶ g_slice_*   (NOT seen)

What is not seen, measured on Debian's GLib 2.74.6: libglib binds its own
calls to ``g_slice_*`` inside the library (no PLT relocation), so the nodes of
a ``GList`` or ``GHashTable`` never reach the shim; a free of such a block
from outside (rare) is dropped and counted.  A recorded trace is therefore an
honest but partial history: every call it holds happened, in this order.

The raw log (one line per event, format in the C file) becomes a
:class:`~memslice.calltrace.CallTrace`: addresses become handles ``b1``,
``b2`` ... in allocation order (addresses are reused, handles never); kernel
thread ids become ``main`` (the process's own thread) and ``t1``, ``t2`` ... in
order of first call; a thread's exit becomes a ``thread_exit`` op.

Where recording cannot work it says why, by cause (all :class:`RecordError`):
no C compiler, a shim that does not compile, a program that does not exist,
a static binary (LD_PRELOAD cannot reach it), a program that never loaded the
shim.  :func:`compile_glib_program` builds a C file against GLib with
``pkg-config`` and raises :class:`NoGlibDevelopmentFiles` when the
``libglib2.0-dev`` files are missing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final, Literal

from .calltrace import Call, CallTrace

__all__ = [
    "CompilerMissing",
    "NoGlibDevelopmentFiles",
    "ProgramNotFound",
    "ProgramTimedOut",
    "RecordError",
    "Recording",
    "ShimBuildFailed",
    "ShimNotLoaded",
    "StaticBinary",
    "build_shim",
    "compile_glib_program",
    "parse_log",
    "record",
    "shim_source",
]

NOT_SEEN: Final = (
    "slice calls made inside libglib itself (GList, GHashTable, GString ...) are not "
    "seen: Debian's libglib binds them inside the library, where LD_PRELOAD cannot reach"
)


class RecordError(RuntimeError):
    """Recording cannot work here; the message says why and what to do."""


class CompilerMissing(RecordError):
    """No C compiler to build the shim (or the program) with."""


class ShimBuildFailed(RecordError):
    """gcc failed on the shim's C source."""


class NoGlibDevelopmentFiles(RecordError):
    """``pkg-config glib-2.0`` finds no GLib headers (install libglib2.0-dev)."""


class ProgramNotFound(RecordError):
    """The program to record does not exist or is not executable."""


class StaticBinary(RecordError):
    """A statically linked program: the dynamic linker, and so LD_PRELOAD, never runs."""


class ProgramTimedOut(RecordError):
    """The program ran longer than the timeout and was killed; no trace is written."""


class ShimNotLoaded(RecordError):
    """The program ran but never loaded the shim (setuid, or it cleared LD_PRELOAD)."""


def shim_source() -> str:
    """The recorder shim's C source, as shipped in the package."""
    return (resources.files("memslice") / "native" / "slicetrace.c").read_text(encoding="utf-8")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memslice"


def _gcc() -> str:
    gcc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("gcc")
    if gcc is None:
        raise CompilerMissing(
            "record needs a C compiler to build its LD_PRELOAD shim: install gcc "
            "(Debian: apt-get install gcc libc6-dev), or set CC"
        )
    return gcc


def build_shim(cache: Path | None = None) -> Path:
    """The compiled shim, built on first use and cached by its source's hash."""
    source = shim_source()
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    folder = cache or _cache_dir()
    library = folder / f"slicetrace-{digest}.so"
    if library.exists():
        return library
    gcc = _gcc()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        c_file, built = Path(tmp) / "slicetrace.c", Path(tmp) / "slicetrace.so"
        c_file.write_text(source, encoding="utf-8")
        done = subprocess.run(
            [gcc, "-O2", "-shared", "-fPIC", "-o", str(built), str(c_file), "-ldl", "-lpthread"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ShimBuildFailed(f"gcc could not build the recorder shim:\n{done.stderr}")
        built.replace(library)  # atomic: a concurrent build never sees half a file
    return library


def compile_glib_program(source: Path, output: Path) -> Path:
    """``gcc SOURCE -o OUTPUT $(pkg-config --cflags --libs glib-2.0)``."""
    gcc = _gcc()
    if shutil.which("pkg-config") is None:
        raise NoGlibDevelopmentFiles(
            "pkg-config is missing: install pkg-config and libglib2.0-dev to build GLib programs"
        )
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "glib-2.0"],
        capture_output=True,
        text=True,
        check=False,
    )
    if flags.returncode != 0:
        raise NoGlibDevelopmentFiles(
            "pkg-config finds no glib-2.0: install GLib's development files "
            f"(Debian: apt-get install libglib2.0-dev)\n{flags.stderr.strip()}"
        )
    done = subprocess.run(
        [gcc, str(source), "-o", str(output), *flags.stdout.split()],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RecordError(f"gcc could not build {source}:\n{done.stderr}")
    return output


def _is_static_elf(program: Path) -> bool:
    """True for an ELF executable with no program interpreter (PT_INTERP)."""
    with program.open("rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # only 64-bit ELF is inspected
            return False
        order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
        phoff = int.from_bytes(head[32:40], order)
        phentsize = int.from_bytes(head[54:56], order)
        phnum = int.from_bytes(head[56:58], order)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    types = {int.from_bytes(table[i : i + 4], order) for i in range(0, len(table), phentsize)}
    pt_interp = 3
    return pt_interp not in types


def _resolve(program: str) -> Path:
    found = shutil.which(program)
    if found is None:
        raise ProgramNotFound(f"{program}: no such program (or not executable)")
    return Path(found)


@dataclass(frozen=True, slots=True)
class Recording:
    """A finished recording: the trace, and how the program ended."""

    trace: CallTrace
    exit_status: int


def parse_log(text: str, command: list[str], exit_status: int = 0) -> CallTrace:
    """The shim's raw log as a :class:`~memslice.calltrace.CallTrace` (handles for addresses)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("p "):
        raise ShimNotLoaded(
            f"{command[0]} never loaded the recorder shim: a setuid program, or one that "
            "clears LD_PRELOAD, cannot be recorded"
        )
    main_tid = lines[0].split()[1]
    live: dict[str, tuple[str, int]] = {}  # address -> (handle, size)
    names: dict[str, str] = {}  # kernel thread id -> trace thread name
    calls: list[Call] = []
    chains: dict[str, int] = {}  # thread -> index in calls of its open chain
    serial = threads = dropped = nulls = 0

    def thread_name(tid: str) -> str:
        nonlocal threads
        if tid not in names:
            if tid == main_tid:
                names[tid] = "main"
            else:
                threads += 1
                names[tid] = f"t{threads}"
        return names[tid]

    kinds = {"a": ("alloc", ""), "z": ("alloc0", ""), "c": ("alloc", "g_slice_copy")}
    for number, line in enumerate(lines[1:], 2):
        parts = line.split()
        try:
            op, size_text, value, tid = parts
            size, _ = int(size_text), int(value, 16)
        except ValueError:
            op = ""
        if op not in ("a", "z", "c", "f", "h", "n", "x"):
            raise RecordError(f"recorder log line {number} is damaged: {line!r}")
        thread = thread_name(tid)
        if op != "n":
            chains.pop(thread, None)
        if op in kinds:
            if int(value, 16) == 0:
                nulls += 1  # size 0: NULL, nothing to free later (API-001)
                continue
            serial += 1
            handle = f"b{serial}"
            live[value] = (handle, size)
            kind, call = kinds[op]
            calls.append(Call(kind, thread, size, handle, call=call))
        elif op == "f":
            if int(value, 16) == 0:
                continue  # g_slice_free1 (n, NULL) does nothing (API-007)
            if value not in live:
                dropped += 1
                continue
            handle, _ = live.pop(value)
            calls.append(Call("free1", thread, size, blocks=(handle,)))
        elif op == "h":
            chains[thread] = len(calls)
            calls.append(Call("free_chain", thread, size, next_offset=int(value, 16)))
        elif op == "n":
            if thread not in chains or value not in live:
                dropped += 1
                continue
            handle, _ = live.pop(value)
            at = chains[thread]
            head = calls[at]
            calls[at] = Call(
                "free_chain",
                thread,
                size,
                blocks=(*head.blocks, handle),
                next_offset=head.next_offset,
            )
        else:  # x: the thread ended; a later thread may reuse its id
            calls.append(Call("thread_exit", thread))
            names.pop(tid, None)
    kept = [c for c in calls if c.op != "free_chain" or c.blocks]
    return CallTrace(
        tuple(kept),
        "glib",
        {
            "command": command,
            "exit_status": exit_status,
            "calls": len(kept),
            "threads": threads + 1,
            "null_allocations_skipped": nulls,
            "unmatched_frees_dropped": dropped,
            "still_live_at_exit": len(live),
            "not_seen": NOT_SEEN,
        },
    )


def record(
    command: list[str],
    *,
    cache: Path | None = None,
    timeout: float | None = None,
    quiet: bool = False,
) -> Recording:
    """Run ``command`` under the shim and return its slice calls as a trace.

    The program's own stdin, stdout and stderr are passed through (discarded
    with ``quiet``).  Raises a :class:`RecordError` subclass when recording
    cannot work (INTRO-006).
    """
    if not command:
        raise ProgramNotFound("record needs a program to run after --")
    program = _resolve(command[0])
    if _is_static_elf(program):
        raise StaticBinary(
            f"{program} is statically linked: LD_PRELOAD cannot interpose its g_slice "
            "calls; link it dynamically against libglib-2.0 to record it"
        )
    shim = build_shim(cache)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "slicetrace.log"
        preload = " ".join(filter(None, [str(shim), os.environ.get("LD_PRELOAD", "")]))
        env = dict(os.environ, LD_PRELOAD=preload, MEMSLICE_TRACE=str(log))
        sink = subprocess.DEVNULL if quiet else None
        try:
            done = subprocess.run(
                command, env=env, timeout=timeout, check=False, stdout=sink, stderr=sink
            )
        except subprocess.TimeoutExpired as exc:
            raise ProgramTimedOut(
                f"{command[0]} still ran after {timeout} s and was killed; no trace written"
            ) from exc
        text = log.read_text(encoding="utf-8") if log.exists() else ""
    return Recording(parse_log(text, command, done.returncode), done.returncode)
