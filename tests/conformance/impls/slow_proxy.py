"""A correct but slow ``cmd:`` implementation: the malloc worker behind a 50 ms delay per call.

Used by the deadline tests (RUN-005): a check against it must end, in
bounded time, as "incomplete", never as a pass and never by hanging.
Usage: ``cmd:python slow_proxy.py [DELAY_SECONDS]``.
"""

from __future__ import annotations

import subprocess
import sys
import time

from memslice_conformance.impl.worker import worker_argv


def main() -> int:
    delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05
    inner = subprocess.Popen(worker_argv("malloc"), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, bufsize=1)
    assert inner.stdin is not None and inner.stdout is not None
    for line in sys.stdin:
        time.sleep(delay)
        inner.stdin.write(line)
        inner.stdin.flush()
        answer = inner.stdout.readline()
        if not answer:
            return 1
        sys.stdout.write(answer)
        sys.stdout.flush()
    inner.stdin.close()
    return inner.wait()


if __name__ == "__main__":
    sys.exit(main())
