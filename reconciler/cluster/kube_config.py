"""Loading the Kubernetes client's configuration: a kubeconfig, in-cluster, or the default.

A missing or broken kubeconfig is one ConfigError naming the file and what is wrong with it
(no such file, not YAML at line N, not a mapping, no current context), never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from kubernetes.aio import config as kube_config
from kubernetes.aio.client import Configuration
from kubernetes.aio.config.config_exception import ConfigException

from reconciler.errors import ConfigError

_DEFAULT_KUBECONFIG = "~/.kube/config"


async def load_configuration(kubeconfig: str | None) -> Configuration:
    """The client configuration from ``kubeconfig``, else in-cluster, else ``~/.kube/config``."""
    configuration = Configuration()
    if kubeconfig:
        await _load_file(kubeconfig, configuration, setting="KUBECONFIG ")
        return configuration
    try:
        kube_config.load_incluster_config(client_configuration=configuration)
    except ConfigException as in_cluster:
        default = _default_kubeconfig()
        if default is None:
            default = _DEFAULT_KUBECONFIG
            raise ConfigError(
                f"no Kubernetes configuration: KUBECONFIG is not set, {default} does not exist,"
                f" and this is not a Pod ({in_cluster})"
            ) from in_cluster
        await _load_file(default, configuration, setting="")
    return configuration


def _default_kubeconfig() -> str | None:
    """``~/.kube/config`` expanded, when it exists."""
    path = Path(_DEFAULT_KUBECONFIG).expanduser()
    return str(path) if path.exists() else None


async def _load_file(path: str, configuration: Configuration, *, setting: str) -> None:
    where = f"{setting}{path}"
    for single in path.split(os.pathsep) if os.pathsep in path else [path]:
        if single:
            _check_file(single, where=f"{setting}{single}")
    try:
        await kube_config.load_kube_config(
            config_file=path, client_configuration=configuration, persist_config=False
        )
    except ConfigException as exc:
        raise ConfigError(f"{where}: not a usable kubeconfig: {exc}") from exc
    except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as exc:
        # The client's loader trusts the file's shape; a hostile or truncated one must still
        # end in one line naming it.
        raise ConfigError(f"{where}: not a usable kubeconfig: {type(exc).__name__}: {exc}") from exc


def _check_file(path: str, *, where: str) -> None:
    """What the client's loader would report badly: no file, no YAML, no mapping."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{where}: cannot read it: {reason}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{where}: not valid YAML{line}: {problem}") from None
    if not isinstance(loaded, dict):
        shown = "empty" if loaded is None else f"a {type(loaded).__name__}"
        raise ConfigError(
            f"{where}: not a kubeconfig: it is {shown}, not a mapping of clusters, users"
            " and contexts"
        )
