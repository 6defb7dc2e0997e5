"""The render stage: ops-repo templates + values -> Kubernetes objects.

Two layers.  ``load_project`` (:mod:`.sources`) is the only code here that touches the
filesystem: it reads one project directory of an ops repo checkout into a ``ProjectSources`` of
plain text.  Everything else (``merge_values``, ``render``, ``to_yaml``) is pure: the same sources
and arguments always give the same objects and the same digest, which is what lets the daemon
skip an apply when nothing changed.  ``RenderPool`` (:mod:`.pool`) runs ``render`` (and, for the
daemon, ``load_project`` too) in worker processes with a deadline and a memory cap, because
templates may loop for ever.

Modules: :mod:`.sources` (safe file loading), :mod:`.values` (values files, deep merge),
:mod:`.yaml_loaders` (safe YAML), :mod:`.documents` (documents -> objects, and back),
:mod:`.sandbox` (the Jinja2 sandbox, the security boundary), :mod:`.printed` (values are data:
printed values as placeholders, put back after parsing), :mod:`.rendering` (a project ->
``Rendered``), :mod:`.pool` (worker processes), :mod:`.messages` (values shown in errors),
:mod:`.validation` (rendered objects against the Kubernetes schema, before apply).
"""

from __future__ import annotations

from reconciler.render.documents import CLUSTER_SCOPED_KINDS, to_yaml
from reconciler.render.pool import RenderPool
from reconciler.render.rendering import MAX_RENDERED_CHARS, Rendered, render
from reconciler.render.sources import (
    MAX_PROJECT_BYTES,
    MAX_SOURCE_BYTES,
    ProjectSources,
    load_project,
    validate_name,
)
from reconciler.render.values import merge_values

__all__ = [
    "CLUSTER_SCOPED_KINDS",
    "MAX_PROJECT_BYTES",
    "MAX_RENDERED_CHARS",
    "MAX_SOURCE_BYTES",
    "ProjectSources",
    "RenderPool",
    "Rendered",
    "load_project",
    "merge_values",
    "render",
    "to_yaml",
    "validate_name",
]
