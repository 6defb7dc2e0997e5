"""Bodies on the wire: decoding request bodies (JSON, YAML, DeleteOptions) and JSON answers."""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from ... import jsoncodec
from .api_errors import ApiError, bad_request
from .patch_types import APPLY_PATCH

JSON = "application/json"
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_PROTOBUF = "application/vnd.kubernetes.protobuf"

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pyyaml built without libyaml
    _YamlLoader = yaml.SafeLoader


def status_response(error: ApiError) -> web.Response:
    """A Status object as the response body."""
    return web.Response(
        status=error.code,
        body=json.dumps(error.status()).encode(),
        content_type=JSON,
        headers=error.headers,
    )


def json_response(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    """``body`` as compact JSON, with a ``Warning`` header per warning.  Answers are made of
    stored objects and what requests sent, neither of which holds a NaN or an infinity (bodies
    with one are refused), so there is none to look for."""
    response = web.Response(status=status, body=jsoncodec.dumps_decoded(body), content_type=JSON)
    for warning in warnings or ():
        response.headers.add("Warning", f'299 - "{warning.replace(chr(34), chr(92) + chr(34))}"')
    return response


async def _raw_body(request: web.Request) -> tuple[str, bytes]:
    content_type = (request.headers.get("Content-Type") or JSON).split(";")[0].strip()
    if content_type.startswith(_PROTOBUF):
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "fakekube does not decode protobuf request bodies (kubectl's imperative "
            "'create <kind>' commands send them); use kubectl apply or create -f instead",
        )
    return content_type, await request.read()


async def read_body(request: web.Request) -> Any:
    """The body of a POST or PUT: JSON, or YAML when the Content-Type says so."""
    content_type, raw = await _raw_body(request)
    if content_type in _YAML_TYPES:
        return _load_yaml(raw)
    if content_type not in (JSON, "*/*", ""):
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f'{JSON}, application/yaml ("{content_type}" was sent)',
        )
    return load_json(raw)


async def read_patch_body(request: web.Request, patch_type: str) -> Any:
    """The body of a PATCH: JSON, or for apply patches JSON or YAML."""
    _, raw = await _raw_body(request)
    if patch_type == APPLY_PATCH:
        try:
            return jsoncodec.loads(raw)
        except ValueError:
            return _load_yaml(raw)
    return load_json(raw)


async def read_delete_options(request: web.Request) -> dict[str, Any]:
    """DeleteOptions from the body, with the query's ``propagationPolicy``/``orphanDependents``."""
    options: dict[str, Any] = {}
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            parsed = load_json(raw)
            if isinstance(parsed, dict):
                options = parsed
    query = request.query
    if "propagationPolicy" in query:
        options["propagationPolicy"] = query["propagationPolicy"]
    if query.get("orphanDependents") == "true" or options.get("orphanDependents") is True:
        options.setdefault("propagationPolicy", "Orphan")
    return options


def int_param(query: Any, name: str) -> int | None:
    """An integer query parameter, None when absent, 400 when not an integer."""
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise bad_request(f"{name} must be an integer, not {value!r}") from exc


def load_json(raw: bytes) -> Any:
    """A JSON body, or 400."""
    if not raw.strip():
        raise bad_request("the request body is empty")
    try:
        return jsoncodec.loads(raw)
    except ValueError as exc:
        raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc


def _load_yaml(raw: bytes) -> Any:
    try:
        loaded = yaml.load(raw, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        raise bad_request(f"error converting YAML to JSON: {exc}") from exc
    # The apiserver converts YAML to JSON first, and JSON has no NaN or infinities
    # (``.nan``, ``.inf``, ``1.0e+400``).
    if jsoncodec.has_non_finite(loaded):
        raise bad_request(
            "error converting YAML to JSON: json: unsupported value: a NaN or infinite number"
        )
    return loaded
