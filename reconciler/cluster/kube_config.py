"""Loading the Kubernetes client's configuration: a kubeconfig, in-cluster, or the default."""

from __future__ import annotations

from kubernetes.aio import config as kube_config
from kubernetes.aio.client import Configuration
from kubernetes.aio.config.config_exception import ConfigException

from reconciler.errors import ConfigError


async def load_configuration(kubeconfig: str | None) -> Configuration:
    """The client configuration from ``kubeconfig``, else in-cluster, else ``~/.kube/config``."""
    configuration = Configuration()
    try:
        if kubeconfig:
            await kube_config.load_kube_config(
                config_file=kubeconfig, client_configuration=configuration, persist_config=False
            )
        else:
            try:
                kube_config.load_incluster_config(client_configuration=configuration)
            except ConfigException:
                await kube_config.load_kube_config(
                    client_configuration=configuration, persist_config=False
                )
    except (ConfigException, OSError) as exc:
        where = kubeconfig or "in-cluster config or ~/.kube/config"
        raise ConfigError(f"cannot load Kubernetes configuration from {where}: {exc}") from exc
    return configuration
