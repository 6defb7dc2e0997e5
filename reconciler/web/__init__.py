"""The daemon's HTTP side: probes and Prometheus metrics (``reconciler.web.server``), the
metrics themselves (``reconciler.web.metrics``), and the API (``reconciler.web.api``)."""

from __future__ import annotations

from reconciler.web.metrics import DaemonMetrics
from reconciler.web.server import HttpServer, Probed, serve

__all__ = ["DaemonMetrics", "HttpServer", "Probed", "serve"]
