"""The daemon under cProfile, switched on and off by signals (``throughput.py --profile``).

    python bench/profiled_daemon.py OUTPUT     (environment as for ``python -m reconciler run``)

SIGUSR1 starts profiling, SIGUSR2 stops it; at exit the profile goes to OUTPUT (pstats) and
OUTPUT.txt (the top functions by own time and by cumulative time, and who calls the top ones).
Times are the main thread's CPU time (``time.thread_time``).  cProfile sees the main
thread only: the event loop, where the daemon spends its CPU; the schema checks it runs in a
thread and the render workers (processes) are not in it.  No product code knows about this:
the script runs ``reconciler run`` as ``python -m reconciler run`` would.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from reconciler.cli import main as reconciler_main

_TOP = 45


def _write(profile: cProfile.Profile, output: Path) -> None:
    profile.dump_stats(str(output))
    text = io.StringIO()
    stats = pstats.Stats(profile, stream=text)
    stats.strip_dirs()
    text.write("==== by own time (tottime)\n")
    stats.sort_stats("tottime").print_stats(_TOP)
    text.write("==== by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(_TOP)
    text.write("==== callers of the top functions by own time\n")
    stats.sort_stats("tottime").print_callers(15)
    output.with_name(output.name + ".txt").write_text(text.getvalue(), encoding="utf-8")


def main() -> int:
    output = Path(sys.argv[1])
    # CPU time of the main thread, not wall time: an awaiting coroutine or a wait for the GIL
    # (held by the schema-check thread) would otherwise count as work.
    profile = cProfile.Profile(time.thread_time)

    def start(_signum: int, _frame: FrameType | None) -> None:
        profile.enable()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        profile.disable()

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    try:
        return reconciler_main(["run"])
    finally:
        profile.disable()
        _write(profile, output)


if __name__ == "__main__":
    sys.exit(main())
