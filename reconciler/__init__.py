"""reconciler: a continuous deployer for Kubernetes driven by desired state in PostgreSQL."""

from __future__ import annotations

__version__ = "0.1.0"
