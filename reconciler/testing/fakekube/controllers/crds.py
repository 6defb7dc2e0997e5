"""The CRD controller: a CustomResourceDefinition is Established and its resources served;
a deleted one takes its objects with it."""

from __future__ import annotations

from typing import Any

from ..objects import clone
from .conditions import condition
from .manager import ControllerManager

_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


class CrdController:
    """The ``crd`` controller."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.registry = manager.registry
        self.crds = self.registry.resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")

    def sync(self, _namespace: str, name: str) -> None:
        """Establishes a CRD (serving its resources) or cleans up after its deletion."""
        registry = self.registry
        crd = registry.find(self.crds, "", name)
        if crd is None:
            registry.types.uninstall(name)
            return
        if crd["metadata"].get("deletionTimestamp"):
            self._clean_up(crd, name)
            return
        if _CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or ()):
            candidate = clone(crd)
            candidate["metadata"]["finalizers"] = [
                *(crd["metadata"].get("finalizers") or ()),
                _CLEANUP_FINALIZER,
            ]
            registry.write_object(self.crds, candidate, manager="kube-apiserver")
            return
        registry.install_crd(crd)
        registry.write_status(self.crds, crd, _established_status(crd), manager="kube-apiserver")

    def _clean_up(self, crd: dict[str, Any], name: str) -> None:
        """Deletes the CRD's objects; once they are gone, stops serving it and lets it go."""
        registry = self.registry
        served = next(
            (t for t in registry.types.all() if t.custom and f"{t.plural}.{t.group}" == name),
            None,
        )
        if served is not None:
            key = registry.types.storage_key(served)
            for obj in list(registry.store.objects(key)):
                if not obj["metadata"].get("deletionTimestamp"):
                    meta = obj["metadata"]
                    registry.delete(served, meta.get("namespace", ""), meta["name"])
            if any(True for _ in registry.store.objects(key)):
                # Some objects wait for their own finalizers: look again shortly.
                self.manager.enqueue("crd", "", name, 0.05)
                return
        registry.types.uninstall(name)
        registry.remove_finalizer(self.crds, crd, _CLEANUP_FINALIZER)


def _established_status(crd: dict[str, Any]) -> dict[str, Any]:
    """The status of a CRD whose names are accepted and whose resources are served."""
    spec = crd["spec"]
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    conditions = (crd.get("status") or {}).get("conditions")
    storage = [v["name"] for v in spec.get("versions") or () if v.get("storage")]
    stored = list((crd.get("status") or {}).get("storedVersions") or ())
    for version in storage:
        if version not in stored:
            stored.append(version)
    return {
        "acceptedNames": names,
        "conditions": [
            condition(conditions, "NamesAccepted", "True", "NoConflicts", "no conflicts found"),
            condition(
                conditions,
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            ),
        ],
        "storedVersions": stored,
    }
