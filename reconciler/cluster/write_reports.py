"""Who hears of a connection's writes: the watch cache, so that it knows which of its objects
may still show a state from before our own write (:mod:`reconciler.cluster.unseen_writes`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.model import ObjectRef
from reconciler.ports import WriteObserver


class WriteReports:
    """The observers of one connection and of its impersonating views (they share this)."""

    def __init__(self) -> None:
        self._observers: list[WriteObserver] = []

    def add(self, observer: WriteObserver) -> None:
        self._observers.append(observer)

    def writing(self, ref: ObjectRef) -> None:
        for observer in self._observers:
            observer.writing(ref)

    def written(self, ref: ObjectRef, answer: Any) -> None:
        """The write answered ``answer`` (the object it stored; None when it is gone)."""
        version = version_of(answer)
        for observer in self._observers:
            observer.written(ref, version)


def version_of(answer: Any) -> str | None:
    """The resourceVersion of a write's answer; None when it carries none."""
    metadata = answer.get("metadata") if isinstance(answer, Mapping) else None
    version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    return version if isinstance(version, str) and version else None
