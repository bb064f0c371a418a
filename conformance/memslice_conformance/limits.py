"""The suite's default limits, in one small module the CLI can read at start-up.

Rules and theory of operation
-----------------------------
The command line shows these defaults in ``--help``; importing the runner
for them would load Hypothesis and every profile before argparse runs.
The runner and the CLI both read them from here (RUN-005, RUN-007)::

    examples  DEFAULT_MAX_EXAMPLES     state-machine examples per run
    time      EXCHANGE_DEADLINE        one batch of calls (a hang past it)
              DEFAULT_CHECK_DEADLINE   one check, its load included
              DEFAULT_RUN_DEADLINE     the whole run
              DEFAULT_SHRINK_SECONDS   delta debugging of one failing trace

Each default is one that a correct but slow implementation meets: the
slowest core check on a correct native library takes about 40 s on a busy
2-core machine.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEFAULT_CHECK_DEADLINE",
    "DEFAULT_MAX_EXAMPLES",
    "DEFAULT_RUN_DEADLINE",
    "DEFAULT_SHRINK_SECONDS",
    "EXCHANGE_DEADLINE",
]

#: Examples of the state machine per run by default (threads get a quarter).
DEFAULT_MAX_EXAMPLES: Final = 80
#: Seconds one exchange (a batch of calls) may take before it counts as a hang.
EXCHANGE_DEADLINE: Final = 10.0
#: Seconds one check may take.
DEFAULT_CHECK_DEADLINE: Final = 600.0
#: Seconds the whole run may take, loading included.
DEFAULT_RUN_DEADLINE: Final = 3600.0
#: Seconds the delta-debugging shrinker may spend on one failing check.
DEFAULT_SHRINK_SECONDS: Final = 30.0
