"""The fault table: one row per fault test (what was injected, what the history says about
it), printed at the end of the run."""

from __future__ import annotations

import collections
import dataclasses

_HEADER = ("fault", "injected", "converged", "deps", "rows", "lost", "dup", "wall s", "notes")


@dataclasses.dataclass
class FaultRow:
    """One line of the fault table: what was injected and what the history says about it."""

    fault: str
    injected: str
    converged: bool
    deployments: int
    history_rows: int
    lost: int
    duplicated: int
    notes: str = ""
    nodeid: str = ""


@dataclasses.dataclass
class FaultTable:
    """The rows recorded so far, and each test's wall time (setup + call + teardown)."""

    rows: list[FaultRow] = dataclasses.field(default_factory=list)
    durations: dict[str, float] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(float)
    )

    def add(self, row: FaultRow, *, nodeid: str) -> None:
        row.nodeid = nodeid
        self.rows.append(row)

    def add_duration(self, nodeid: str, seconds: float) -> None:
        self.durations[nodeid] += seconds

    def lines(self) -> list[str]:
        """The table as text lines, columns aligned (the notes, last, are not padded)."""
        header = (
            "fault",
            "injected",
            "converged",
            "deps",
            "rows",
            "lost",
            "dup",
            "wall s",
            "notes",
        )
        cells = [header]
        for row in self.rows:
            cells.append(
                (
                    row.fault,
                    row.injected,
                    "yes" if row.converged else "NO",
                    str(row.deployments),
                    str(row.history_rows),
                    str(row.lost),
                    str(row.duplicated),
                    f"{self.durations.get(row.nodeid, 0.0):.1f}",
                    row.notes,
                )
            )
        widths = [max(len(line[i]) for line in cells) for i in range(len(_HEADER) - 1)]
        return [
            " | ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]])
            for line in cells
        ]
