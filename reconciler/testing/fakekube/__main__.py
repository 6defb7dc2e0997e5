"""``python -m reconciler.testing.fakekube --port 0 --kubeconfig PATH``: run fakekube until
SIGTERM or SIGINT, printing its URL on the first line of stdout."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from .cluster import FakeKube


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reconciler.testing.fakekube",
        description="Run a fake Kubernetes API server (with controllers) for tests and local runs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--kubeconfig", type=Path, required=True, help="where to write a kubeconfig for it"
    )
    parser.add_argument(
        "--rollout-delay",
        type=float,
        default=0.2,
        help="seconds a Pod takes to become Ready (default 0.2)",
    )
    parser.add_argument(
        "--time-factor",
        type=float,
        default=1.0,
        help="scale of durations objects declare (progressDeadlineSeconds...); 0.01 = 100x faster",
    )
    return parser.parse_args(argv)


async def _serve(arguments: argparse.Namespace) -> None:
    fakekube = FakeKube(
        host=arguments.host,
        port=arguments.port,
        rollout_delay_s=arguments.rollout_delay,
        time_factor=arguments.time_factor,
    )
    fakekube.request_log_limit = 100_000
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with fakekube:
        fakekube.write_kubeconfig(arguments.kubeconfig)
        print(fakekube.url, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Runs fakekube until it is told to stop; returns the exit status."""
    arguments = _arguments(argv)
    try:
        asyncio.run(_serve(arguments))
    except OSError as exc:
        print(
            f"fakekube: cannot listen on {arguments.host}:{arguments.port}: {exc}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
