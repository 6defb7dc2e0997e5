"""fakekube: a Kubernetes API server for tests and local runs.

It serves discovery, OpenAPI v3, CRUD, list/watch, server-side apply with managedFields and the
other patch types, and runs controllers that roll Deployments, StatefulSets, DaemonSets and Jobs
out over time.  See docs/fakekube.md for what it emulates and what it does not.
"""

from __future__ import annotations

from .cluster import FakeKube
from .faults import Faults, RequestRecord

__all__ = ["FakeKube", "Faults", "RequestRecord"]
