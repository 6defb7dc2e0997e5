"""``reconciler diff``: what an apply of one deployment would change on the cluster (a dry run).

The deployment is rendered as the daemon renders it: its ops repo at the commit the daemon last
synced (``ops_repos.last_sha``), from a fresh clone in a temporary directory (the daemon's own
checkouts are never touched), in a render worker with the daemon's deadline, then checked
against the Kubernetes schema and labelled with its owner as admission does.  Each object is
then server-side applied as a dry run (``dryRun=All``, the daemon's field manager, forced, as the
ops repo's ServiceAccount when its policy names one), and the answer compared with the live
object (:mod:`reconciler.cluster.compare`).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reconciler.cluster.apply import apply_phases
from reconciler.cluster.compare import unified_diff
from reconciler.errors import InputError, KubernetesError, OpsRepoError
from reconciler.model import Deployment, ObjectRef, OpsRepo, RepoPolicy
from reconciler.policy import Subject, with_owner_labels
from reconciler.ports import Cluster, RenderRequest
from reconciler.render.service import PoolRenderer
from reconciler.render.validation import validate_objects
from reconciler.repos import snapshots
from reconciler.repos.checkout import sync_repo
from reconciler.repos.git import Budget
from reconciler.repos.git import Subject as RepoSubject
from reconciler.settings import Settings


class DiffStore(Protocol):
    """The reads a diff needs (it writes nothing)."""

    async def get_deployment(self, *, project: str, environment: str) -> Deployment | None: ...

    async def ops_repos_by_id(self, ids: Sequence[int]) -> dict[int, OpsRepo]: ...

    async def policy_for(self, ops_repo_id: int) -> RepoPolicy: ...


@dataclass(frozen=True)
class ObjectDiff:
    """One object's change: a unified diff, "" when the apply would change nothing."""

    ref: ObjectRef
    text: str


@dataclass(frozen=True, kw_only=True)
class Target:
    """What to diff: the deployment's row, its ops repo, its policy."""

    deployment: Deployment
    repo: OpsRepo
    rules: RepoPolicy


async def read_target(store: DiffStore, *, project: str, environment: str) -> Target:
    """The deployment, its ops repo and its policy; InputError when there is no such row."""
    deployment = await store.get_deployment(project=project, environment=environment)
    if deployment is None:
        raise InputError(f"no deployment {project}/{environment}")
    repos = await store.ops_repos_by_id([deployment.ops_repo_id])
    repo = repos.get(deployment.ops_repo_id)
    if repo is None:
        raise InputError(f"deployment {project}/{environment} has no ops repo")
    rules = await store.policy_for(deployment.ops_repo_id)
    return Target(deployment=deployment, repo=repo, rules=rules)


async def diff_deployment(
    target: Target, *, cluster: Cluster, settings: Settings, image_ref: str | None = None
) -> list[ObjectDiff]:
    """Each object's diff, in render order (the deployment's Namespace first when the render
    does not hold it, as the daemon creates it); ``image_ref`` replaces the row's image."""
    objects = await render_as_daemon(target, settings=settings, image_ref=image_ref)
    if target.rules.impersonated_user is not None:
        cluster = cluster.impersonating(target.rules.impersonated_user)
    namespace = target.deployment.namespace
    if not any(o.get("metadata", {}).get("name") == namespace for o in apply_phases(objects)[0]):
        bare = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        objects = (bare, *objects)
    return [
        await diff_object(obj, cluster=cluster, field_manager=settings.field_manager)
        for obj in objects
    ]


async def render_as_daemon(
    target: Target, *, settings: Settings, image_ref: str | None
) -> tuple[dict[str, Any], ...]:
    """The objects the daemon would apply: rendered at ``last_sha``, schema-checked, labelled."""
    d = target.deployment
    with tempfile.TemporaryDirectory(prefix="reconciler-diff-") as scratch:
        checkout = await checkout_synced(target.repo, scratch=Path(scratch), settings=settings)
        renderer = PoolRenderer(timeout_s=settings.render_timeout_s)
        try:
            rendered = await renderer.render(
                RenderRequest(
                    checkout=checkout,
                    subdir=target.repo.path,
                    project=d.project,
                    environment=d.environment,
                    namespace=d.namespace,
                    image_ref=image_ref or d.image_ref,
                    values_override=d.values_override,
                )
            )
        finally:
            await renderer.close()
    validate_objects(
        rendered.objects,
        sources=rendered.sources,
        kubernetes_version=settings.kubernetes_version,
    )
    subject = Subject(
        project=d.project,
        environment=d.environment,
        namespace=d.namespace,
        ops_repo=target.repo.name,
    )
    return tuple(with_owner_labels(o, subject=subject) for o in rendered.objects)


async def checkout_synced(repo: OpsRepo, *, scratch: Path, settings: Settings) -> Path:
    """A fresh clone of ``repo`` under ``scratch``, its files at the commit the daemon synced."""
    sha = repo.last_sha
    if not sha:
        raise OpsRepoError(
            f"ops repo {repo.name} has not been synced by the daemon yet"
            f"{f': {repo.last_error}' if repo.last_error else ''}"
        )
    synced = await sync_repo(
        name=repo.name,
        url=repo.repo_url,
        branch=repo.branch,
        repos_dir=scratch,
        timeout_s=settings.git_timeout_s,
    )
    if synced.sha == sha:
        return synced.checkout
    subject = RepoSubject.for_repo(name=repo.name, url=repo.repo_url, branch=repo.branch)
    snapshot = await asyncio.to_thread(
        snapshots.publish,
        checkout=synced.checkout,
        repos_dir=scratch,  # absolute: a TemporaryDirectory
        name=repo.name,
        sha=sha,
        budget=Budget.start(settings.git_timeout_s),
        subject=subject,
    )
    return snapshot.path


async def diff_object(
    obj: Mapping[str, Any], *, cluster: Cluster, field_manager: str
) -> ObjectDiff:
    """Live against a forced dry-run apply of ``obj``.  An object the server cannot dry-run yet
    (its namespace, or its CRD, comes with the same apply) is shown all added, as rendered."""
    ref = ObjectRef.from_object(obj)
    live: dict[str, Any] | None = None
    try:
        live = await cluster.get(ref)
        applied = await cluster.apply(obj, field_manager=field_manager, dry_run=True)
    except KubernetesError as exc:
        if live is not None or exc.status != 404:
            raise
        applied = dict(obj)
    return ObjectDiff(ref=ref, text=unified_diff(live, applied, label=str(ref)))
