"""ObjectRef (reconciler.model): the identity every cluster call names an object by."""

from __future__ import annotations

import pytest

from reconciler.errors import RenderError
from reconciler.model import ObjectRef
from tests.unit.cluster.health.objects import deployment, plain


def test_object_ref_from_object_and_str() -> None:
    """ObjectRef reads identity from an object and prints kind namespace/name."""
    ref = ObjectRef.from_object(deployment())
    assert ref == ObjectRef("apps/v1", "Deployment", "web", "web-prod")
    assert str(ref) == "Deployment web-prod/web"


def test_object_ref_cluster_scoped() -> None:
    """A cluster-scoped object has no namespace and prints kind name."""
    ref = ObjectRef.from_object(plain("rbac.authorization.k8s.io/v1", "ClusterRole", "viewer"))
    assert ref.namespace is None
    assert str(ref) == "ClusterRole viewer"


def test_object_ref_without_identity() -> None:
    """A document without apiVersion, kind or name is a RenderError."""
    with pytest.raises(RenderError, match=r"metadata\.name"):
        ObjectRef.from_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
