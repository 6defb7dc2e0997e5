"""A sampling profiler for a benchmark's child process, switched on and off by signals.

:func:`install` makes SIGUSR1 start sampling and SIGUSR2 stop it.  Every 5 ms of the
process's CPU time (``ITIMER_PROF``) the main thread's Python stack is recorded; at exit the
output file gets the stacks in the collapsed format flame graph tools read
(``frame;frame;... count``) and OUTPUT.txt a summary: samples by package of the innermost
frame, the functions with the most samples anywhere on the stack (inclusive), and the CPU
seconds of each thread over the window.  ``sampled_daemon.py`` runs the daemon under it,
``fakekube_server.py --sample`` fakekube.

Unlike cProfile it adds no cost per call, so many small calls are not inflated and
coroutines' inclusive times mean something (a resumed coroutine's awaiting callers are on the
stack).  CPU spent in another thread shows up as samples of the main thread idling in
``select``: read that from the per-thread lines.
"""

from __future__ import annotations

import collections
import os
import signal
import threading
from pathlib import Path
from types import FrameType

_INTERVAL_S = 0.005
_TOP = 70
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _label(frame: FrameType) -> str:
    code = frame.f_code
    path = code.co_filename
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/reconciler/" in path:
        path = "reconciler/" + path.rsplit("/reconciler/", 1)[1]
    else:
        path = "stdlib/" + path.rsplit("/", 1)[-1]
    return f"{path}:{code.co_name}"


def _package(label: str) -> str:
    path = label.split(":", 1)[0]
    if path.startswith("reconciler/"):
        return path
    if path.startswith("stdlib/"):
        return path
    return path.split("/", 1)[0]


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process, by thread id and name."""
    found: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            raw = (task / "stat").read_text(encoding="ascii")
            name = (task / "comm").read_text(encoding="ascii").strip()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        found[f"{task.name} {name}"] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return found


class Sampler:
    """Stacks of the main thread, sampled on the process's CPU clock."""

    def __init__(self) -> None:
        self.stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
        self.threads_before: dict[str, float] = {}
        self.threads_after: dict[str, float] = {}
        self.running = False

    def sample(self, _signum: int, frame: FrameType | None) -> None:
        stack: list[str] = []
        while frame is not None:
            stack.append(_label(frame))
            frame = frame.f_back
        stack.reverse()
        self.stacks[tuple(stack)] += 1

    def start(self, _signum: int, _frame: FrameType | None) -> None:
        if self.running:
            return
        self.running = True
        self.threads_before = _thread_cpu()
        signal.setitimer(signal.ITIMER_PROF, _INTERVAL_S, _INTERVAL_S)

    def stop(self, _signum: int, _frame: FrameType | None) -> None:
        if not self.running:
            return
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        self.threads_after = _thread_cpu()
        self.running = False

    def write(self, output: Path) -> None:
        output.write_text(
            "".join(f"{';'.join(s)} {n}\n" for s, n in self.stacks.most_common()),
            encoding="utf-8",
        )
        total = sum(self.stacks.values()) or 1
        own: collections.Counter[str] = collections.Counter()
        own_function: collections.Counter[str] = collections.Counter()
        inclusive: collections.Counter[str] = collections.Counter()
        for stack, count in self.stacks.items():
            if stack:
                own[_package(stack[-1])] += count
                own_function[stack[-1]] += count
            for label in set(stack):
                inclusive[label] += count
        lines = [f"samples {total} (every {_INTERVAL_S * 1000:g} ms of process CPU time)"]
        lines.append("==== threads: CPU seconds in the window")
        for name, after in sorted(self.threads_after.items()):
            used = after - self.threads_before.get(name, 0.0)
            if used > 0.005:
                lines.append(f"{used:8.2f}  {name}")
        lines.append("==== own samples by package (innermost frame)")
        lines += [f"{n / total * 100:6.1f}%  {k}" for k, n in own.most_common(_TOP)]
        lines.append("==== own samples by function")
        lines += [f"{n / total * 100:6.1f}%  {k}" for k, n in own_function.most_common(_TOP)]
        lines.append("==== inclusive samples by function (anywhere on the stack)")
        lines += [f"{n / total * 100:6.1f}%  {k}" for k, n in inclusive.most_common(_TOP * 2)]
        output.with_name(output.name + ".txt").write_text("\n".join(lines) + "\n", "utf-8")


def install() -> Sampler:
    """A sampler driven by SIGUSR1 (start) and SIGUSR2 (stop); call from the main thread."""
    sampler = Sampler()
    assert threading.current_thread() is threading.main_thread()
    signal.signal(signal.SIGPROF, sampler.sample)
    signal.signal(signal.SIGUSR1, sampler.start)
    signal.signal(signal.SIGUSR2, sampler.stop)
    return sampler


def finish(sampler: Sampler, output: Path) -> None:
    """Stop sampling (if still on) and write what was sampled."""
    sampler.stop(signal.SIGUSR2, None)
    sampler.write(output)
