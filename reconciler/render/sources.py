"""Read one project directory of an ops repo checkout: the only I/O of the render stage.

Everything read must stay inside the checkout (symlinks included) and under a size limit; names
that come from the database are checked before they become paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reconciler.errors import InputError, RenderError
from reconciler.render.messages import shown

MAX_SOURCE_BYTES = 1024 * 1024
"""Largest template or values file the loader reads."""

MAX_PROJECT_BYTES = 8 * 1024 * 1024
"""Largest total of a project's templates and values files the loader reads."""

_MIB = 1024 * 1024

MAX_NAME_LENGTH = 253

TEMPLATE_SUFFIXES = (".yaml", ".yml", ".yaml.j2", ".yml.j2")
_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
_ENV_VALUES_FILE = re.compile(r"values-(.+)\.ya?ml")


@dataclass(frozen=True)
class ProjectSources:
    """Everything ``render`` needs from one project directory, as plain text."""

    project_dir: str
    """The project directory relative to the checkout root (``apps/web``), for messages."""
    templates: tuple[tuple[str, str], ...]
    """(file name, text) for every template, sorted by file name."""
    values_base: str | None
    """Text of ``values.yaml``; None when the file is absent."""
    values_env: str | None
    """Text of ``values-<environment>.yaml``; None when the file is absent."""
    values_env_name: str
    """``values-<environment>.yaml``, for messages."""


def validate_name(*, field: str, value: str) -> None:
    """Refuse a project or environment name that is malformed or could leave the ops repo."""
    reason: str | None = None
    if not value:
        reason = "it is empty"
    elif len(value) > MAX_NAME_LENGTH:
        reason = f"it is longer than {MAX_NAME_LENGTH} characters"
    elif value in (".", ".."):
        reason = "it names a directory, not a project"
    elif "\x00" in value:
        reason = "it contains a NUL character"
    elif value.startswith(("/", "\\")):
        reason = "it is an absolute path"
    elif "/" in value or "\\" in value:
        reason = "it contains a path separator"
    elif not _NAME_PATTERN.fullmatch(value):
        reason = "only letters, digits, '.', '_' and '-' are allowed"
    if reason is not None:
        raise InputError(f"invalid {field} name {shown(value)}: {reason}")


def load_project(*, checkout: Path, path: str, project: str, environment: str) -> ProjectSources:
    """Read ``<checkout>/<path>/<project>/``: its templates and its two values files.

    Templates are the directory's own ``*.yaml``, ``*.yml``, ``*.yaml.j2`` and ``*.yml.j2`` files
    (not subdirectories, not dot files, not ``values*.yaml`` / ``values*.yml``).  Any file or
    directory that resolves outside the checkout, symlinks included, is refused, and so is a
    project over :data:`MAX_PROJECT_BYTES`.  A project with ``values-<name>.yaml`` files declares
    its environments: any other environment is refused.  One without such files takes any.
    """
    validate_name(field="project", value=project)
    validate_name(field="environment", value=environment)
    relative_dir = _project_relative_dir(path=path, project=project)
    project_dir_text = relative_dir.as_posix()

    root, resolved_dir = _resolve_project_dir(checkout, relative_dir)
    try:
        entries = sorted(resolved_dir.iterdir(), key=lambda entry: entry.name)
    except OSError as exc:
        raise RenderError(f"cannot list project directory {project_dir_text}: {exc}") from exc
    _check_environment_declared(entries, project=project, environment=environment)
    values_env_name = f"values-{environment}.yaml"
    values_files = (resolved_dir / "values.yaml", resolved_dir / values_env_name)
    template_files = [entry for entry in entries if _is_template_name(entry.name)]
    _check_budget([*template_files, *values_files], root=root, project=project)

    templates: list[tuple[str, str]] = []
    for entry in template_files:
        text = _read_source(entry, root=root, project_dir=project_dir_text)
        templates.append((entry.name, text))
    if not templates:
        raise RenderError(
            f"project directory {project_dir_text} holds no templates"
            f" (expected files ending in {', '.join(TEMPLATE_SUFFIXES)})"
        )

    sources = ProjectSources(
        project_dir=project_dir_text,
        templates=tuple(templates),
        values_base=_read_optional(values_files[0], root, project_dir_text),
        values_env=_read_optional(values_files[1], root, project_dir_text),
        values_env_name=values_env_name,
    )
    # the files may have grown since they were measured
    read = [text for _name, text in templates] + [sources.values_base, sources.values_env]
    _refuse_over_budget(sum(len(text.encode()) for text in read if text), project=project)
    return sources


def _check_environment_declared(entries: list[Path], *, project: str, environment: str) -> None:
    declared = sorted(
        {
            match.group(1)
            for entry in entries
            if (match := _ENV_VALUES_FILE.fullmatch(entry.name)) and not entry.is_dir()
        }
    )
    if declared and environment not in declared:
        raise RenderError(
            f"environment {environment!r} is not declared by project {project!r}"
            f" (it has values files for: {', '.join(declared)})"
        )


def _check_budget(files: list[Path], *, root: Path, project: str) -> None:
    """Refuse a project too large to read, before reading it (from the files' sizes)."""
    total = 0
    for file in files:
        try:
            resolved = _resolve_entry(file)
            if resolved.is_relative_to(root) and resolved.is_file():
                total += resolved.stat().st_size
        except OSError:
            continue  # reading it reports the problem
    _refuse_over_budget(total, project=project)


def _refuse_over_budget(total: int, *, project: str) -> None:
    if total > MAX_PROJECT_BYTES:
        raise RenderError(
            f"project {project!r} is larger than the {MAX_PROJECT_BYTES // _MIB} MiB budget"
            f" (templates and values files: {total / _MIB:.1f} MiB)"
        )


def _resolve_project_dir(checkout: Path, relative_dir: PurePosixPath) -> tuple[Path, Path]:
    """(checkout root, project directory), both resolved; the directory must be inside."""
    project_dir_text = relative_dir.as_posix()
    try:
        root = checkout.resolve(strict=True)
    except OSError as exc:
        raise RenderError(f"ops repo checkout {checkout} does not exist or cannot be read") from exc
    resolved_dir = root.joinpath(*relative_dir.parts).resolve()
    if not resolved_dir.is_relative_to(root):
        raise RenderError(
            f"project directory {project_dir_text} resolves outside the ops repo checkout"
            " (a symlink?); refusing to read it"
        )
    if not resolved_dir.is_dir():
        raise RenderError(
            f"project directory {project_dir_text} does not exist in the ops repo"
            " (check the project name and the ops repo's path)"
        )
    return root, resolved_dir


def _project_relative_dir(*, path: str, project: str) -> PurePosixPath:
    """``<path>/<project>`` as a relative path, refusing a path that could leave the checkout."""
    if "\x00" in path:
        raise InputError(f"ops repo path {shown(path)} contains a NUL character")
    relative = PurePosixPath(path)
    if relative.is_absolute():
        raise InputError(f"ops repo path {shown(path)} must be relative to the repo root")
    if ".." in relative.parts:
        raise InputError(f"ops repo path {shown(path)} must not contain '..'")
    return relative / project


def _is_template_name(name: str) -> bool:
    if name.startswith(".") or not name.endswith(TEMPLATE_SUFFIXES):
        return False
    is_values_file = name.startswith("values") and name.endswith((".yaml", ".yml"))
    return not is_values_file


def _resolve_entry(file: Path) -> Path:
    """``file.resolve()`` for a file of the resolved project directory: the file itself unless
    it is a symlink (one lstat, where resolving looks at every component of the path)."""
    return file.resolve() if file.is_symlink() else file


def _read_optional(file: Path, root: Path, project_dir: str) -> str | None:
    # a dangling symlink is reported by _read_source, not taken for a missing file
    if not file.is_symlink() and not file.exists():
        return None
    return _read_source(file, root=root, project_dir=project_dir)


def _read_source(file: Path, *, root: Path, project_dir: str) -> str:
    """Read one template or values file, within the checkout and the size limit."""
    where = f"in project directory {project_dir}"
    resolved = _resolve_entry(file)
    if not resolved.is_relative_to(root):
        raise RenderError(
            f"resolves outside the ops repo checkout (a symlink?); refusing to read it ({where})",
            location=file.name,
        )
    if not resolved.is_file():
        raise RenderError(f"is not a regular file ({where})", location=file.name)
    too_big = RenderError(
        f"is larger than the limit of {MAX_SOURCE_BYTES} bytes per file ({where})",
        location=file.name,
    )
    try:
        if resolved.stat().st_size > MAX_SOURCE_BYTES:
            raise too_big
        with resolved.open("rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        raise RenderError(f"cannot be read ({where}): {exc}", location=file.name) from exc
    if len(data) > MAX_SOURCE_BYTES:
        raise too_big
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RenderError(
            f"is not valid UTF-8 (byte {exc.start}) ({where})", location=file.name
        ) from exc
