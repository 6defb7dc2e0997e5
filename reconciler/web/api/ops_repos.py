"""``/api/v1/ops-repos`` (admin, every project's: a project-bound token may not): register,
list, show, change, unregister, and sync now (the NOTIFY ``reconciler ops-repo sync`` sends).

Repository URLs and errors are shown redacted: credentials in a URL never leave the database.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from reconciler.access import Scope
from reconciler.errors import InputError
from reconciler.model import OpsRepo
from reconciler.repo_sync import request_syncs
from reconciler.repos.urls import redact, redact_url, validate_repo_url
from reconciler.web.api.errors import ApiError, bad_request, json_response, not_found
from reconciler.web.api.routes import Call, Operation
from reconciler.web.api.validation import Body, Field

NAME = r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$"

_REPO_FIELDS = {
    "repo_url": Field(
        kind="string",
        description="where to clone from (https, ssh, or a local path)",
        pattern=r"^\S+$",
        min_length=1,
        max_length=4096,
    ),
    "branch": Field(
        kind="string",
        description="the branch to follow (default main)",
        pattern=r"^[^\s~^:?*\[\\]+$",
        max_length=255,
    ),
    "path": Field(
        kind="string",
        description="the subdirectory holding the projects (default: the root)",
        max_length=1024,
    ),
    "sync_interval_s": Field(
        kind="integer",
        description="seconds between syncs (default 60)",
        minimum=0,
        maximum=2**31 - 1,
    ),
}

CREATE_BODY = Body(
    name="OpsRepoCreate",
    description="an ops repo to register",
    required=("name", "repo_url"),
    fields={
        "name": Field(kind="string", description="a slug naming the repo", pattern=NAME),
        **_REPO_FIELDS,
    },
)

PATCH_BODY = Body(
    name="OpsRepoPatch",
    description="the columns to change",
    min_properties=1,
    fields=_REPO_FIELDS,
)


def ops_repo_json(repo: OpsRepo) -> dict[str, Any]:
    """An ops repo as the API shows it (URL and error redacted)."""
    return {
        "id": repo.id,
        "name": repo.name,
        "repo_url": redact_url(repo.repo_url),
        "branch": repo.branch,
        "path": repo.path,
        "sync_interval_s": repo.sync_interval_s,
        "last_synced_at": repo.last_synced_at,
        "last_sha": repo.last_sha,
        "last_error": redact(repo.last_error, url=repo.repo_url) if repo.last_error else None,
    }


def _checked_url(changes: dict[str, Any]) -> None:
    if "repo_url" in changes:
        try:
            validate_repo_url(changes["repo_url"])
        except InputError as exc:
            raise bad_request(str(exc), field="repo_url") from None


def _name(call: Call) -> str:
    name = call.path("name")
    if not re.match(NAME, name):
        raise not_found(f"no ops repo named {name!r}: names are slugs")
    return name


async def _existing(call: Call) -> OpsRepo:
    name = _name(call)
    repo = await call.store.get_ops_repo(name)
    if repo is None:
        raise not_found(f"no ops repo named {name}")
    return repo


async def list_ops_repos(call: Call) -> web.Response:
    """GET every ops repo."""
    call.query({})
    repos = await call.store.list_ops_repos()
    return json_response({"ops_repos": [ops_repo_json(r) for r in repos]})


async def create_ops_repo(call: Call) -> web.Response:
    """POST: register an ops repo (201)."""
    call.query({})
    body = await call.body(CREATE_BODY)
    _checked_url(body)
    repo = await call.store.add_ops_repo(**body)
    return json_response(ops_repo_json(repo), status=201)


async def get_ops_repo(call: Call) -> web.Response:
    """GET one ops repo."""
    call.query({})
    return json_response(ops_repo_json(await _existing(call)))


async def patch_ops_repo(call: Call) -> web.Response:
    """PATCH where an ops repo points."""
    call.query({})
    name = _name(call)
    changes = await call.body(PATCH_BODY)
    _checked_url(changes)
    repo = await call.store.update_ops_repo(name=name, **changes)
    if repo is None:
        raise not_found(f"no ops repo named {name}")
    return json_response(ops_repo_json(repo))


async def delete_ops_repo(call: Call) -> web.Response:
    """DELETE: unregister an ops repo no deployment uses (204)."""
    call.query({})
    name = _name(call)
    try:
        users = await call.store.remove_ops_repo(name)
    except LookupError:
        raise not_found(f"no ops repo named {name}") from None
    if users:
        used_by = ", ".join(users)
        raise ApiError(409, f"ops repo {name} is used by {used_by}: point them elsewhere first")
    return web.Response(status=204)


async def sync_ops_repo(call: Call) -> web.Response:
    """POST sync: the NOTIFY `reconciler ops-repo sync` sends (202)."""
    call.query({})
    repo = await _existing(call)
    asked = await request_syncs(store=call.store, names=[repo.name], announce=lambda _name: None)
    if not asked:
        raise not_found(f"no ops repo named {repo.name}")  # unregistered meanwhile
    return json_response({"name": repo.name, "sync_requested": True}, status=202)


_ONE = "/api/v1/ops-repos/{name}"


def _admin(operation_id: str, method: str, path: str, handler: Any) -> Operation:
    return Operation(
        operation_id=operation_id,
        method=method,
        path=path,
        scope=Scope.ADMIN,
        handler=handler,
        per_project=False,
    )


OPERATIONS = [
    _admin("listOpsRepos", "GET", "/api/v1/ops-repos", list_ops_repos),
    _admin("createOpsRepo", "POST", "/api/v1/ops-repos", create_ops_repo),
    _admin("getOpsRepo", "GET", _ONE, get_ops_repo),
    _admin("patchOpsRepo", "PATCH", _ONE, patch_ops_repo),
    _admin("deleteOpsRepo", "DELETE", _ONE, delete_ops_repo),
    _admin("syncOpsRepo", "POST", _ONE + "/sync", sync_ops_repo),
]
