"""Minimal Kubernetes manifests for the fakekube tests."""

from __future__ import annotations

from typing import Any

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def deployment(
    name: str = "web",
    *,
    namespace: str = "default",
    image: str = "nginx:1.25",
    replicas: int | None = 2,
    **spec: Any,
) -> dict[str, Any]:
    """A minimal Deployment manifest."""
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": image, "ports": [{"containerPort": 80}]}
                    ]
                },
            },
            **spec,
        },
    }
    if replicas is not None:
        body["spec"]["replicas"] = replicas
    return body
