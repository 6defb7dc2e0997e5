"""The daemon under a sampling profiler, switched on and off by signals (``throughput.py
--sample``).

    python bench/sampled_daemon.py OUTPUT     (environment as for ``python -m reconciler run``)

SIGUSR1 starts sampling, SIGUSR2 stops it; see ``sampler.py`` for what OUTPUT and OUTPUT.txt
hold.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sampler import finish, install

from reconciler.cli import main as reconciler_main


def main() -> int:
    output = Path(sys.argv[1])
    sampler = install()
    try:
        return reconciler_main(["run"])
    finally:
        finish(sampler, output)


if __name__ == "__main__":
    sys.exit(main())
