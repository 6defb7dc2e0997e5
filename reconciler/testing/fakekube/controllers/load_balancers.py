"""Addresses after the rollout delay: LoadBalancer Services (a cloud controller) and Ingresses
(an ingress controller; fakekube assumes one serves every class)."""

from __future__ import annotations

from .manager import ControllerManager


class ServiceController:
    """The ``service`` controller."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.registry = manager.registry
        self.services = self.registry.resource("v1", "Service")

    def sync(self, namespace: str, name: str) -> None:
        """Gives a LoadBalancer Service an ingress address after the rollout delay."""
        service = self.registry.find(self.services, namespace, name)
        if service is None:
            return
        spec = service.get("spec") or {}
        status = service.get("status") or {}
        ingress = (status.get("loadBalancer") or {}).get("ingress")
        if spec.get("type") != "LoadBalancer":
            if ingress:
                self.registry.write_status(self.services, service, {"loadBalancer": {}})
            return
        if ingress:
            return
        memory = self.manager.remember(service["metadata"]["uid"])
        first_seen = memory.setdefault("lb_seen", self.manager.now())
        wait = first_seen + self.manager.settings.rollout_delay_s - self.manager.now()
        if wait > 0:
            self.manager.enqueue("service", namespace, name, wait)
            return
        address = self.registry.allocator.load_balancer_ip()
        self.registry.write_status(
            self.services,
            service,
            {"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}},
            manager="fakekube-cloud-controller",
        )


class IngressController:
    """The ``ingress`` controller."""

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.registry = manager.registry
        self.ingresses = self.registry.resource("networking.k8s.io/v1", "Ingress")

    def sync(self, namespace: str, name: str) -> None:
        """Publishes an address for an Ingress after the rollout delay, as an ingress
        controller would (fakekube assumes one serves every class)."""
        ingress = self.registry.find(self.ingresses, namespace, name)
        if ingress is None or (ingress.get("status") or {}).get("loadBalancer", {}).get("ingress"):
            return
        memory = self.manager.remember(ingress["metadata"]["uid"])
        first_seen = memory.setdefault("seen", self.manager.now())
        wait = first_seen + self.manager.settings.rollout_delay_s - self.manager.now()
        if wait > 0:
            self.manager.enqueue("ingress", namespace, name, wait)
            return
        address = self.registry.allocator.load_balancer_ip()
        self.registry.write_status(
            self.ingresses,
            ingress,
            {"loadBalancer": {"ingress": [{"ip": address}]}},
            manager="fakekube-ingress-controller",
        )
