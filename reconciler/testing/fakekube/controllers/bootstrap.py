"""What every cluster starts with: namespaces, a Ready node, a storage class, the API Service."""

from __future__ import annotations

from typing import Any

from ..defaults import DEFAULT_STORAGE_CLASS, NODE_NAME
from ..objects import now_iso
from ..registry import Registry

_NODE_RESOURCES = {"cpu": "8", "memory": "16Gi", "pods": "1000", "ephemeral-storage": "100Gi"}


def bootstrap(registry: Registry) -> None:
    """What every cluster starts with: namespaces, a node, a storage class, the API Service."""
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        registry.create(
            registry.resource("v1", "Namespace"),
            "",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            manager="kube-apiserver",
        )
    _create_node(registry)
    registry.create(
        registry.resource("storage.k8s.io/v1", "StorageClass"),
        "",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": DEFAULT_STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "fakekube.io/local",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
        manager="kube-apiserver",
    )
    registry.create(
        registry.resource("v1", "Service"),
        "default",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "clusterIP": "10.96.0.1",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            },
        },
        manager="kube-apiserver",
    )


def _create_node(registry: Registry) -> None:
    """The one node, ``fakekube-node``, Ready as its kubelet reports it."""
    nodes = registry.resource("v1", "Node")
    node, _ = registry.create(
        nodes,
        "",
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "labels": {
                    "kubernetes.io/hostname": NODE_NAME,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node-role.kubernetes.io/control-plane": "",
                },
            },
            "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
        },
        manager="kubelet",
    )
    registry.write_status(nodes, node, _node_status(now_iso()), manager="kubelet")


def _node_status(now: str) -> dict[str, Any]:
    return {
        "addresses": [
            {"type": "InternalIP", "address": "172.18.0.2"},
            {"type": "Hostname", "address": NODE_NAME},
        ],
        "allocatable": dict(_NODE_RESOURCES),
        "capacity": dict(_NODE_RESOURCES),
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        ],
        "nodeInfo": {
            "architecture": "amd64",
            "operatingSystem": "linux",
            "kubeletVersion": "v1.32.0",
            "kubeProxyVersion": "v1.32.0",
            "containerRuntimeVersion": "fakekube://1.0",
            "kernelVersion": "6.1.0",
            "osImage": "fakekube",
            "machineID": "fakekube",
            "systemUUID": "fakekube",
            "bootID": "fakekube",
        },
    }
