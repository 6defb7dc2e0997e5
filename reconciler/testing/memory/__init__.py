"""In-memory stand-ins for the database, the cluster, the renderer, git and LISTEN.

They implement the Protocols of :mod:`reconciler.ports` with the same preconditions as the real
ones (a write guarded by the claim is refused when the claim is gone; a claim skips rows leased
by others), so the attempt's and the loop's decisions have fast unit tests.  Faults are
scripted: ``store.faults["finish_attempt"] = [...]`` raises each in turn, and an entry of
:class:`LostAcknowledgement` commits the write and then raises, as a connection dropped after
COMMIT does.
"""

from __future__ import annotations

from reconciler.testing.memory.cluster import InMemoryCluster
from reconciler.testing.memory.deliveries import InMemoryDeliveries
from reconciler.testing.memory.edges import (
    InMemoryFetcher,
    InMemoryListener,
    InMemoryRenderer,
    MemoryRendered,
    web_app,
)
from reconciler.testing.memory.store import InMemoryStore, LostAcknowledgement

__all__ = [
    "InMemoryCluster",
    "InMemoryDeliveries",
    "InMemoryFetcher",
    "InMemoryListener",
    "InMemoryRenderer",
    "InMemoryStore",
    "LostAcknowledgement",
    "MemoryRendered",
    "web_app",
]
