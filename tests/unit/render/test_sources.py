"""Tests for loading a project: names, paths, symlinks, size limits, file kinds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.errors import InputError, RenderError
from reconciler.render import MAX_SOURCE_BYTES, ProjectSources, load_project, render, validate_name
from tests.unit.render.helpers import CONFIGMAP, configmap_with_data

# --------------------------------------------------------------------------------------------
# validate_name


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("", "it is empty", id="empty"),
        pytest.param(".", "it names a directory, not a project", id="dot"),
        pytest.param("..", "it names a directory, not a project", id="dot-dot"),
        pytest.param("/", "it is an absolute path", id="slash"),
        pytest.param("/etc", "it is an absolute path", id="absolute"),
        pytest.param("a/b", "it contains a path separator", id="nested"),
        pytest.param("../web", "it contains a path separator", id="parent-escape"),
        pytest.param("a\\b", "it contains a path separator", id="backslash"),
        pytest.param("\\\\server", "it is an absolute path", id="unc"),
        pytest.param("we\x00b", "it contains a NUL character", id="nul"),
        pytest.param("x" * 300, "it is longer than 253 characters", id="300-chars"),
        pytest.param("web prod", "only letters, digits, '.', '_' and '-' are allowed", id="space"),
        pytest.param("wéb", "only letters, digits, '.', '_' and '-' are allowed", id="non-ascii"),
        pytest.param("web\n", "only letters, digits, '.', '_' and '-' are allowed", id="newline"),
    ],
)
def test_validate_name_refuses(value: str, reason: str) -> None:
    """Names that are malformed or would leave the ops repo are input errors."""
    with pytest.raises(InputError) as caught:
        validate_name(field="project", value=value)
    assert caught.value.message.startswith("invalid project name ")
    assert caught.value.message.endswith(f": {reason}")


@pytest.mark.parametrize("value", ["web", "web-api", "a.b_c", "Prod2", "x" * 253, "..."])
def test_validate_name_accepts(value: str) -> None:
    """Ordinary names pass."""
    validate_name(field="environment", value=value)


def test_validate_name_message_shows_a_truncated_repr() -> None:
    """A long hostile value is shown as a truncated repr, and the field is named."""
    with pytest.raises(InputError) as caught:
        validate_name(field="environment", value="y" * 300)
    message = caught.value.message
    assert message.startswith("invalid environment name '" + "y" * 64 + "'... (300 characters)")
    assert len(message) < 160


# --------------------------------------------------------------------------------------------
# load_project


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_load_project_reads_templates_and_values(tmp_path: Path) -> None:
    """Templates are the matching files, sorted; values files are read separately."""
    project = tmp_path / "apps" / "web"
    for name in ("service.yaml", "deployment.yaml.j2", "a.yml", "z.yml.j2"):
        write(project / name, f"# {name}\n")
    for name in ("README.md", "notes.txt", ".hidden.yaml", "deploy.json", "x.j2"):
        write(project / name, "not a template\n")
    write(project / "nested" / "inner.yaml", "# not read: subdirectories are not templates\n")
    write(project / "values.yaml", "replicas: 1\n")
    write(project / "values-prod.yaml", "replicas: 3\n")
    write(project / "values-staging.yaml", "replicas: 2\n")
    write(project / "values.yml", "not a template either\n")

    sources = load_project(checkout=tmp_path, path="apps", project="web", environment="prod")

    assert sources == ProjectSources(
        project_dir="apps/web",
        templates=(
            ("a.yml", "# a.yml\n"),
            ("deployment.yaml.j2", "# deployment.yaml.j2\n"),
            ("service.yaml", "# service.yaml\n"),
            ("z.yml.j2", "# z.yml.j2\n"),
        ),
        values_base="replicas: 1\n",
        values_env="replicas: 3\n",
        values_env_name="values-prod.yaml",
    )


def test_load_project_without_values_files(tmp_path: Path) -> None:
    """Absent values files are None, and an empty path means projects at the root."""
    write(tmp_path / "web" / "cm.yaml", CONFIGMAP)
    sources = load_project(checkout=tmp_path, path="", project="web", environment="staging")
    assert sources.project_dir == "web"
    assert sources.values_base is None
    assert sources.values_env is None
    assert sources.values_env_name == "values-staging.yaml"


def test_load_then_render(tmp_path: Path) -> None:
    """What the loader reads renders with the environment's values."""
    write(tmp_path / "web" / "cm.yaml.j2", configmap_with_data("  level: {{ values.level }}\n"))
    write(tmp_path / "web" / "values.yaml", "level: info\n")
    write(tmp_path / "web" / "values-staging.yaml", "level: debug\n")
    sources = load_project(checkout=tmp_path, path="", project="web", environment="staging")
    rendered = render(
        sources,
        project="web",
        environment="staging",
        namespace="web-staging",
        image_ref="i",
        values_override={},
    )
    assert rendered.objects[0]["data"] == {"level": "debug"}


def test_missing_project_directory_is_named(tmp_path: Path) -> None:
    """A missing project directory is a RenderError naming it."""
    (tmp_path / "apps").mkdir()
    with pytest.raises(RenderError, match=r"project directory apps/web does not exist"):
        load_project(checkout=tmp_path, path="apps", project="web", environment="prod")


def test_missing_checkout_is_named(tmp_path: Path) -> None:
    """A checkout that does not exist is a RenderError naming it."""
    missing = tmp_path / "nowhere"
    with pytest.raises(RenderError, match=f"ops repo checkout {missing} does not exist"):
        load_project(checkout=missing, path="", project="web", environment="prod")


def test_project_without_templates_is_refused(tmp_path: Path) -> None:
    """A project directory holding only values files is an error, not an empty deployment."""
    write(tmp_path / "web" / "values.yaml", "a: 1\n")
    with pytest.raises(RenderError, match="project directory web holds no templates"):
        load_project(checkout=tmp_path, path="", project="web", environment="prod")


@pytest.mark.parametrize(
    ("path", "project", "environment"),
    [
        ("", "..", "prod"),
        ("", "web", "../../etc"),
        ("", "web/../..", "prod"),
        ("", "web", "prod\x00"),
    ],
)
def test_load_project_validates_names(
    tmp_path: Path, path: str, project: str, environment: str
) -> None:
    """Bad project or environment names are refused before anything is read."""
    with pytest.raises(InputError):
        load_project(checkout=tmp_path, path=path, project=project, environment=environment)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc", "must be relative to the repo root"),
        ("../other", "must not contain '..'"),
        ("apps/../..", "must not contain '..'"),
        ("apps\x00", "contains a NUL character"),
    ],
)
def test_load_project_refuses_escaping_path(tmp_path: Path, path: str, message: str) -> None:
    """An ops repo path that is absolute or climbs out is an input error."""
    with pytest.raises(InputError, match=message):
        load_project(checkout=tmp_path, path=path, project="web", environment="prod")


def test_symlinked_template_outside_checkout_is_refused(tmp_path: Path) -> None:
    """A template symlinked to a file outside the checkout is not read."""
    checkout = tmp_path / "checkout"
    secret = write(tmp_path / "outside" / "secret.yaml", "password: hunter2\n")
    write(checkout / "web" / "cm.yaml", CONFIGMAP)
    (checkout / "web" / "leak.yaml").symlink_to(secret)
    with pytest.raises(RenderError) as caught:
        load_project(checkout=checkout, path="", project="web", environment="prod")
    assert caught.value.location == "leak.yaml"
    assert "resolves outside the ops repo checkout" in caught.value.message
    assert "hunter2" not in caught.value.message


def test_symlinked_values_file_outside_checkout_is_refused(tmp_path: Path) -> None:
    """A values file symlinked outside the checkout is not read."""
    checkout = tmp_path / "checkout"
    outside = write(tmp_path / "outside" / "values.yaml", "a: 1\n")
    write(checkout / "web" / "cm.yaml", CONFIGMAP)
    (checkout / "web" / "values-prod.yaml").symlink_to(outside)
    with pytest.raises(RenderError) as caught:
        load_project(checkout=checkout, path="", project="web", environment="prod")
    assert caught.value.location == "values-prod.yaml"


def test_symlinked_project_directory_outside_checkout_is_refused(tmp_path: Path) -> None:
    """A project directory that is a symlink out of the checkout is not read."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    write(tmp_path / "outside" / "cm.yaml", CONFIGMAP)
    (checkout / "web").symlink_to(tmp_path / "outside")
    with pytest.raises(RenderError, match="project directory web resolves outside"):
        load_project(checkout=checkout, path="", project="web", environment="prod")


def test_symlink_inside_checkout_is_followed(tmp_path: Path) -> None:
    """A symlink to another file of the same checkout is fine."""
    write(tmp_path / "shared" / "cm.yaml", CONFIGMAP)
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "cm.yaml").symlink_to(Path("..") / "shared" / "cm.yaml")
    sources = load_project(checkout=tmp_path, path="", project="web", environment="prod")
    assert sources.templates == (("cm.yaml", CONFIGMAP),)


def test_dangling_template_symlink_is_reported(tmp_path: Path) -> None:
    """A template symlink that leads nowhere is an error, not a silently missing template."""
    write(tmp_path / "web" / "cm.yaml", CONFIGMAP)
    (tmp_path / "web" / "gone.yaml").symlink_to(tmp_path / "web" / "nothing.yaml")
    with pytest.raises(RenderError) as caught:
        load_project(checkout=tmp_path, path="", project="web", environment="prod")
    assert caught.value.location == "gone.yaml"
    assert "is not a regular file" in caught.value.message


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    """A file over the size limit is refused with a message naming it and the limit."""
    write(tmp_path / "web" / "big.yaml", "#" * (MAX_SOURCE_BYTES + 1))
    with pytest.raises(RenderError) as caught:
        load_project(checkout=tmp_path, path="", project="web", environment="prod")
    assert caught.value.location == "big.yaml"
    assert f"larger than the limit of {MAX_SOURCE_BYTES} bytes" in caught.value.message


def test_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    """A file of exactly the limit is accepted."""
    write(tmp_path / "web" / "big.yaml", "#" * MAX_SOURCE_BYTES)
    sources = load_project(checkout=tmp_path, path="", project="web", environment="prod")
    assert len(sources.templates[0][1]) == MAX_SOURCE_BYTES


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    """A template that is not UTF-8 is refused, naming the file."""
    path = tmp_path / "web" / "cm.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(RenderError) as caught:
        load_project(checkout=tmp_path, path="", project="web", environment="prod")
    assert caught.value.location == "cm.yaml"
    assert "is not valid UTF-8 (byte 9)" in caught.value.message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_not_read(tmp_path: Path) -> None:
    """A FIFO named like a template is refused rather than blocking the reader."""
    write(tmp_path / "web" / "cm.yaml", CONFIGMAP)
    os.mkfifo(tmp_path / "web" / "pipe.yaml")
    with pytest.raises(RenderError, match="is not a regular file"):
        load_project(checkout=tmp_path, path="", project="web", environment="prod")


# --------------------------------------------------------------------------------------------
# Declared environments and the project budget


def test_an_undeclared_environment_is_refused(tmp_path: Path) -> None:
    """With values-<env> files, only those environments render; the message lists them."""
    write(tmp_path / "web" / "cm.yaml", CONFIGMAP)
    for name in ("values-prod.yaml", "values-staging.yaml", "values-dev.yml", "values.yaml"):
        write(tmp_path / "web" / name, "a: 1\n")
    with pytest.raises(RenderError) as caught:
        load_project(checkout=tmp_path, path="", project="web", environment="prdo")
    assert caught.value.message == (
        "environment 'prdo' is not declared by project 'web'"
        " (it has values files for: dev, prod, staging)"
    )


def test_a_project_without_environment_files_takes_any_environment(tmp_path: Path) -> None:
    """A project with no values-<env> files (values.yaml alone is fine) accepts any name."""
    write(tmp_path / "web" / "cm.yaml", CONFIGMAP)
    write(tmp_path / "web" / "values.yaml", "a: 1\n")
    sources = load_project(checkout=tmp_path, path="", project="web", environment="anything")
    assert sources.values_env is None


def test_a_project_over_the_budget_is_refused(tmp_path: Path) -> None:
    """Nine 1 MiB templates exceed the 8 MiB project budget, which the message names."""
    for index in range(9):
        write(tmp_path / "web" / f"t{index}.yaml", "#" * MAX_SOURCE_BYTES)
    write(tmp_path / "web" / "values.yaml", "a: " + "x" * (100 * 1024) + "\n")
    with pytest.raises(RenderError) as caught:
        load_project(checkout=tmp_path, path="", project="web", environment="prod")
    assert caught.value.message == (
        "project 'web' is larger than the 8 MiB budget (templates and values files: 9.1 MiB)"
    )
