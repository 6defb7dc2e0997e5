"""``python -m reconciler.testing.fakekube --port 0 --kubeconfig PATH [fault options]``: run
fakekube until SIGTERM or SIGINT, printing its URL on the first line of stdout.

The fault options set ``Faults`` and the watch settings at start, so an ops engineer can
rehearse a failure (a slow or flaky API, crash-looping or missing images, slow rollouts, short
watch histories) without writing Python.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import uvloop

from reconciler import collector

from .cluster import DEFAULT_BOOKMARK_INTERVAL_S, FakeKube
from .store import HISTORY_SIZE


def _rate(text: str) -> float:
    """A share of requests, 0..1."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _non_negative(text: str) -> float:
    """Seconds, 0 or more."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _positive(text: str) -> float:
    """Seconds, more than 0."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _positive_int(text: str) -> int:
    """A count, 1 or more."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value


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
        type=_non_negative,
        default=0.2,
        metavar="S",
        help="seconds a Pod takes to become Ready (default 0.2)",
    )
    parser.add_argument(
        "--time-factor",
        type=float,
        default=1.0,
        help="scale of durations objects declare (progressDeadlineSeconds...); 0.01 = 100x faster",
    )
    _fault_arguments(parser.add_argument_group("faults"))
    _watch_arguments(parser.add_argument_group("watches"))
    return parser.parse_args(argv)


def _fault_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--latency",
        type=_non_negative,
        default=0.0,
        metavar="S",
        help="seconds every request waits first (default 0)",
    )
    group.add_argument(
        "--error-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="share of requests (0..1) answered 500 InternalError",
    )
    group.add_argument(
        "--throttle-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="share of requests (0..1) answered 429 TooManyRequests with Retry-After",
    )
    group.add_argument(
        "--retry-after",
        type=_positive_int,
        default=1,
        metavar="S",
        help="seconds the Retry-After header of a 429 asks for (default 1)",
    )
    group.add_argument(
        "--crash-image",
        action="append",
        default=[],
        metavar="PATTERN",
        help="fnmatch pattern: Pods of matching images crash (CrashLoopBackOff); repeatable",
    )
    group.add_argument(
        "--missing-image",
        action="append",
        default=[],
        metavar="PATTERN",
        help="fnmatch pattern: matching images cannot be pulled (ImagePullBackOff); repeatable",
    )


def _watch_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--watch-history",
        type=_positive_int,
        default=HISTORY_SIZE,
        metavar="N",
        help="events per resource a watch can replay; a watch from an older resourceVersion "
        f"gets 410 Expired (default {HISTORY_SIZE})",
    )
    group.add_argument(
        "--bookmark-interval",
        type=_positive,
        default=DEFAULT_BOOKMARK_INTERVAL_S,
        metavar="S",
        help="seconds between BOOKMARK events on watches with allowWatchBookmarks "
        f"(default {DEFAULT_BOOKMARK_INTERVAL_S:g}, like kube-apiserver)",
    )


def _configured(arguments: argparse.Namespace) -> FakeKube:
    """The FakeKube the options describe."""
    fakekube = FakeKube(
        host=arguments.host,
        port=arguments.port,
        rollout_delay_s=arguments.rollout_delay,
        time_factor=arguments.time_factor,
        watch_history=arguments.watch_history,
        bookmark_interval_s=arguments.bookmark_interval,
    )
    faults = fakekube.faults
    faults.latency_s = arguments.latency
    faults.error_rate = arguments.error_rate
    faults.throttle_rate = arguments.throttle_rate
    faults.retry_after_s = arguments.retry_after
    faults.crashloop_images = list(arguments.crash_image)
    faults.missing_images = list(arguments.missing_image)
    fakekube.request_log_limit = 100_000
    return fakekube


async def _serve(arguments: argparse.Namespace) -> None:
    fakekube = _configured(arguments)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with fakekube:
        fakekube.write_kubeconfig(arguments.kubeconfig)
        collector.settle()  # as the daemon does: the schemas and routes stay for good
        print(fakekube.url, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Runs fakekube until it is told to stop; returns the exit status."""
    arguments = _arguments(argv)
    try:
        # uvloop as the daemon runs on: the benchmarks count fakekube's CPU too
        uvloop.run(_serve(arguments))
    except OSError as exc:
        print(
            f"fakekube: cannot listen on {arguments.host}:{arguments.port}: {exc}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
