"""What can go wrong with an implementation under test, typed by cause.

Rules and theory of operation
-----------------------------
::

    ImplFailure                    the implementation misbehaved (exit status 1)
     ├── ImplError                 an op answered with an error / raised
     ├── ImplCrash                 the process died (signal or exit status)
     └── ImplHang                  no answer before the deadline; killed
    ImplUnavailable                could not be loaded at all (exit status 2)
    Violation                      an observation contradicts a clause
    OutOfTime (BaseException)      a check or the run passed its deadline
                                   (RUN-005): "incomplete", never a pass

Every failure of a check is reported against the clause IDs of the op or
invariant that was running, together with the op history that led to it; a
crash or hang is a failure of that check, never of the suite.
"""

from __future__ import annotations

__all__ = [
    "HangAbort",
    "ImplCrash",
    "ImplError",
    "ImplFailure",
    "ImplHang",
    "ImplUnavailable",
    "OutOfTime",
    "Violation",
    "safe_text",
]


def safe_text(value: object, limit: int = 2000) -> str:
    """``str(value)``, even for an object whose ``__str__`` raises (RUN-003)."""
    try:
        text = str(value)
    except BaseException:
        try:
            text = f"<{type(value).__name__} whose __str__ raised>"
        except BaseException:
            text = "<object whose __str__ raised>"
    return text if len(text) <= limit else text[:limit] + "..."


class ImplFailure(Exception):
    """The implementation under test failed while executing an op."""


class ImplError(ImplFailure):
    """An op raised (in-process) or answered ``ok: false`` (worker)."""

    def __init__(self, op: str, error_type: str, message: str) -> None:
        super().__init__(f"{op} raised {error_type}: {message}")
        self.op = op
        self.error_type = error_type
        self.message = message


class ImplCrash(ImplFailure):
    """The implementation's process ended while ops were outstanding."""

    def __init__(self, returncode: int | None, signal_name: str | None, stderr_tail: str) -> None:
        how = f"signal {signal_name}" if signal_name else f"exit status {returncode}"
        detail = f"; stderr: {stderr_tail.strip()[-600:]}" if stderr_tail.strip() else ""
        super().__init__(f"implementation crashed ({how}){detail}")
        self.returncode = returncode
        self.signal_name = signal_name
        self.stderr_tail = stderr_tail


class ImplHang(ImplFailure):
    """The implementation did not answer within the deadline and was killed."""

    def __init__(self, timeout: float, stderr_tail: str = "") -> None:
        super().__init__(f"implementation hung: no answer within {timeout:.1f} s (killed)")
        self.timeout = timeout
        self.stderr_tail = stderr_tail


class ImplUnavailable(Exception):
    """The implementation could not be resolved, loaded or started."""


class Violation(AssertionError):
    """An observation that contradicts the cited clauses."""

    def __init__(self, clauses: tuple[str, ...], message: str) -> None:
        super().__init__(f"[{', '.join(clauses)}] {message}")
        self.clauses = clauses
        self.message = message


class HangAbort(BaseException):
    """Stops a Hypothesis run at once after a hang.

    Shrinking a hang would cost one full deadline per attempt, so a hang is
    reported with the history of the first example that hung.  It derives
    from ``BaseException`` because Hypothesis shrinks every ``Exception``.
    """

    def __init__(self, hang: ImplHang) -> None:
        super().__init__(hang)
        self.hang = hang


class OutOfTime(BaseException):
    """A check, the load, or the whole run passed its deadline (RUN-005).

    A ``BaseException`` for the same reason as :class:`HangAbort`: it must
    stop Hypothesis at once rather than be shrunk.
    """

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"{what} did not finish within its {seconds:g} s deadline")
        self.what = what
        self.seconds = seconds
