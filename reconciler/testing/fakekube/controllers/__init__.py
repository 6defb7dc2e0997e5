"""The controllers: what makes fakekube behave like a cluster over time.

``manager`` schedules controller keys; ``cluster_controllers`` wires the cluster-level ones
(garbage collection, namespaces, CRDs, volumes, load balancers, ingresses, autoscalers) and
``workloads`` the workload ones (the kubelet, ReplicaSets, Deployments, StatefulSets,
DaemonSets, Jobs), one module per controller; ``bootstrap`` creates what every cluster starts
with.
"""

from __future__ import annotations

from .bootstrap import bootstrap
from .cluster_controllers import ClusterControllers
from .conditions import condition
from .manager import ClusterSettings, ControllerManager
from .owners import controller_owner, controller_ref
from .workloads import Workloads

__all__ = [
    "ClusterControllers",
    "ClusterSettings",
    "ControllerManager",
    "Workloads",
    "bootstrap",
    "condition",
    "controller_owner",
    "controller_ref",
]
