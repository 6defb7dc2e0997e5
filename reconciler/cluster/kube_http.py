"""Lean requests for :class:`reconciler.cluster.kube.Kube`'s hot calls (apply, get, delete,
merge patch, list): plain-dict bodies sent without the kubernetes client's model layers.

The dynamic client's path (``DynamicClient.request`` -> ``ApiClient.param_serialize`` ->
``call_api`` -> ``RESTClientObject.request``) walks every body through
``sanitize_for_serialization`` and every header and query through generic helpers, which for
our dicts changes nothing and costs most of an apply's CPU in the client.  This path builds the
query and headers itself and reuses of the client everything that carries its configuration:

* ``configuration.host`` for the URL;
* ``ApiClient.default_headers`` (User-Agent) and ``cookie``, as ``param_serialize`` adds them;
* ``ApiClient.update_params_for_auth`` with the dynamic client's ``BearerToken`` setting: the
  token through ``configuration.get_api_key_with_prefix``, so ``refresh_api_key_hook`` (the
  in-cluster, exec and OIDC refreshes the config loader sets up) still runs on each request;
* ``ApiClient.rest_client.request`` and so its one aiohttp session: the TLS context (CA,
  client certificate, verification), proxy, SNI name, ``trace_configs`` (the request metrics,
  see ``kube_requests``), its retry options, and the body's JSON encoding;
* the proxy the environment names (``HTTPS_PROXY``, ``NO_PROXY``, ...), as the session's
  ``trust_env`` finds it, but found once (:func:`settle_environment`) rather than on every
  request, where aiohttp looks it up (and ``~/.netrc``) in a worker thread, two thread hops a
  request;
* failures raised as the dynamic client raises them: ``ApiException.from_response`` turned
  into the dynamic client's error class (``api_exception``), with status, reason, body and
  headers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from aiohttp.helpers import get_env_proxy_for_url
from kubernetes.aio.client import ApiClient, Configuration
from kubernetes.aio.client.exceptions import ApiException
from kubernetes.aio.dynamic.exceptions import api_exception
from yarl import URL

from reconciler import jsoncodec

_dynamic_error: Any = api_exception  # untyped in the client

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
_JSON = "application/json"
# The authentication the dynamic client asks ApiClient for on every request.
_AUTH_SETTINGS = ["BearerToken"]

Query = Sequence[tuple[str, str]]


class KubeHttp:
    """Requests with JSON answers through one :class:`ApiClient`'s configuration and session."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query = (),
        body: Any = None,
        content_type: str = _JSON,
        headers: Mapping[str, str],
        timeout_s: float,
    ) -> Any:
        """The decoded JSON answer to ``method path?query``; an ``ApiException`` (the dynamic
        client's subclass for the status) for any answer but 2xx."""
        api = self._api
        sent = {"Accept": _JSON, "Content-Type": content_type, **headers}
        sent.update(api.default_headers)
        if api.cookie:
            sent["Cookie"] = api.cookie
        queries = list(query)
        await api.update_params_for_auth(sent, queries, _AUTH_SETTINGS, path, method, body)
        url = api.configuration.host + path
        if queries:
            url += "?" + "&".join(f"{key}={quote(value)}" for key, value in queries)
        rest: Any = api.rest_client  # untyped in the client
        response = await rest.request(
            method, url, headers=sent, body=body, _request_timeout=timeout_s
        )
        data = await response.read()
        if not 200 <= response.status <= 299:
            raise _client_error(response)
        # as aiohttp's ``json()`` answers: None for an empty body, ValueError for one not JSON
        return jsoncodec.loads(data) if data.strip() else None


def settle_environment(configuration: Configuration) -> None:
    """Resolve once what the client's session (``trust_env``) would look up on every request:
    the environment's proxy for the API server, unless the kubeconfig names one.  Its netrc
    lookup is dropped: the bearer token is sent as a header, which aiohttp refuses to combine
    with netrc credentials anyway, and Kubernetes clients (kubectl) do not read netrc."""
    if configuration.proxy is None:
        try:
            proxy, proxy_auth = get_env_proxy_for_url(URL(configuration.host))
        except LookupError:  # no proxy for this host (none set, or NO_PROXY)
            pass
        else:
            configuration.proxy = str(proxy)
            if proxy_auth is not None and not configuration.proxy_headers:
                configuration.proxy_headers = {"Proxy-Authorization": proxy_auth.encode()}
    extra: Any = configuration.client_session_kwargs or {}
    configuration.client_session_kwargs = {**extra, "trust_env": False}


def object_path(
    resource: Any, *, name: str | None, namespace: str | None, writing: bool = False
) -> str:
    """The path of one object of ``resource`` (a discovered resource or subresource), or of all
    of them without ``name``.  A write to a namespaced kind without a namespace is refused as
    the dynamic client refuses it."""
    if writing and resource.namespaced and not namespace:
        raise ValueError(f"Namespace is required for {resource.group_version}.{resource.kind}")
    path: str = resource.path(name=name, namespace=namespace if resource.namespaced else None)
    return path


def apply_query(*, field_manager: str, dry_run: bool) -> list[tuple[str, str]]:
    """A server-side apply's query: ours, forced (taking over conflicting fields)."""
    query = [("fieldManager", field_manager), ("force", "true")]
    if dry_run:
        query.insert(0, ("dryRun", "All"))
    return query


def _client_error(response: Any) -> ApiException:
    """The exception the dynamic client raises for this answer."""
    try:
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    except ApiException as exc:
        error: ApiException = _dynamic_error(exc)
        return error
