"""The volume controller: a claim is bound to a provisioned volume after the rollout delay;
the volume goes with its claim (reclaim policy Delete)."""

from __future__ import annotations

from typing import Any

from ..defaults import DEFAULT_STORAGE_CLASS
from ..objects import clone
from .manager import ControllerManager
from .owners import delete_if_present


class VolumeController:
    """The ``pvc`` controller (a provisioner and the binder in one)."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.registry = manager.registry
        self.pvcs = self.registry.resource("v1", "PersistentVolumeClaim")
        self.pvs = self.registry.resource("v1", "PersistentVolume")

    def sync(self, namespace: str, name: str) -> None:
        """Binds a claim to a freshly provisioned volume after the rollout delay."""
        pvc = self.registry.find(self.pvcs, namespace, name)
        if pvc is None:
            self._release_volumes(namespace, name)
            return
        if (pvc.get("status") or {}).get("phase") == "Bound" or pvc["metadata"].get(
            "deletionTimestamp"
        ):
            return
        memory = self.manager.remember(pvc["metadata"]["uid"])
        first_seen = memory.setdefault("seen", self.manager.now())
        wait = first_seen + self.manager.settings.rollout_delay_s - self.manager.now()
        if wait > 0:
            self.manager.enqueue("pvc", namespace, name, wait)
            return
        spec = pvc.get("spec") or {}
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        volume_name = spec.get("volumeName") or f"pvc-{pvc['metadata']['uid']}"
        if self.registry.find(self.pvs, "", volume_name) is None:
            self._provision(pvc, volume_name, storage)
        if spec.get("volumeName") != volume_name:
            candidate = clone(pvc)
            candidate["spec"]["volumeName"] = volume_name
            annotations = candidate["metadata"].setdefault("annotations", {})
            annotations["pv.kubernetes.io/bind-completed"] = "yes"
            annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
            annotations["volume.kubernetes.io/storage-provisioner"] = "fakekube.io/local"
            updated = self.registry.write_object(self.pvcs, candidate)
            if updated is None:
                return
            pvc = updated
        status = {
            "phase": "Bound",
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "capacity": {"storage": storage},
        }
        self.registry.write_status(self.pvcs, pvc, status)

    def _provision(self, pvc: dict[str, Any], volume_name: str, storage: Any) -> None:
        """Creates the claim's volume, Bound to it."""
        spec = pvc.get("spec") or {}
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": volume_name,
                "annotations": {"pv.kubernetes.io/provisioned-by": "fakekube.io/local"},
            },
            "spec": {
                "capacity": {"storage": storage},
                "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": spec.get("storageClassName", DEFAULT_STORAGE_CLASS),
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "hostPath": {
                    "path": f"/var/lib/fakekube/{volume_name}",
                    "type": "DirectoryOrCreate",
                },
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "name": pvc["metadata"]["name"],
                    "namespace": pvc["metadata"]["namespace"],
                    "uid": pvc["metadata"]["uid"],
                },
            },
        }
        created = self.registry.create_object(self.pvs, volume, manager="fakekube-provisioner")
        if created is not None:
            self.registry.write_status(self.pvs, created, {"phase": "Bound"})

    def _release_volumes(self, namespace: str, name: str) -> None:
        for volume in list(self.registry.store.objects(("", "persistentvolumes"))):
            claim = (volume.get("spec") or {}).get("claimRef") or {}
            reclaim = (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy")
            if (
                claim.get("namespace") == namespace
                and claim.get("name") == name
                and reclaim == "Delete"
            ):
                delete_if_present(self.registry, self.pvs, "", volume["metadata"]["name"])
