"""`reconciler render --validate` as a process: the daemon's schema check, with an exit code."""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import run_cli

EXAMPLE_REPO = Path(__file__).resolve().parents[2] / "ops_repos_example"
RENDER_WEB = (
    "render",
    "--ops-dir",
    str(EXAMPLE_REPO),
    "--project",
    "web",
    "--environment",
    "prod",
    "--image-ref",
    "reg/web:1",
)


def test_valid_render_exits_0_with_the_objects() -> None:
    """The example repo validates: exit 0, the YAML on stdout, the version checked on stderr."""
    result = run_cli(*RENDER_WEB, "--validate", database_url=None)
    assert result.returncode == 0, result.stderr
    assert "kind: Deployment" in result.stdout
    assert "valid for Kubernetes 1.32" in result.stderr


def test_string_for_an_integer_exits_1_naming_file_document_and_field(tmp_path: Path) -> None:
    """A string where an integer belongs: exit 1, one line naming file, document and field."""
    values = tmp_path / "values.yaml"
    values.write_text("replicas: three\n", encoding="utf-8")
    result = run_cli(*RENDER_WEB, "--values", str(values), "--validate", database_url=None)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("reconciler: error: rendered objects do not match")
    assert (
        "deployment.yaml.j2, document 1: Deployment web-prod/web: spec.replicas:"
        " 'three' is not of type 'integer'" in result.stderr
    )
    assert "Traceback" not in result.stderr
    unchecked = run_cli(*RENDER_WEB, "--values", str(values), database_url=None)
    assert unchecked.returncode == 0, unchecked.stderr
    assert "replicas: three" in unchecked.stdout


def test_unknown_field_exits_1_and_the_version_is_a_setting(tmp_path: Path) -> None:
    """An unknown field in a later document is named; RECONCILER_KUBERNETES_VERSION is honoured."""
    project = tmp_path / "ops" / "app"
    project.mkdir(parents=True)
    (project / "all.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\ndata: {a: b}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc}\n"
        "spec: {ports: [{port: 80, targetPort: 8080, protocl: TCP}]}\n",
        encoding="utf-8",
    )
    args = ("render", "--ops-dir", str(tmp_path / "ops"), "--project", "app")
    args += ("--environment", "dev", "--image-ref", "reg/app:1", "--validate")
    result = run_cli(*args, database_url=None, RECONCILER_KUBERNETES_VERSION="1.30")
    assert result.returncode == 1
    assert (
        "the Kubernetes 1.30 schema: all.yaml, document 2: Service app-dev/svc:"
        " spec.ports[0].protocl: unknown field" in result.stderr
    )
    unsupported = run_cli(*args, database_url=None, RECONCILER_KUBERNETES_VERSION="1.9")
    assert unsupported.returncode == 1
    assert "RECONCILER_KUBERNETES_VERSION 1.9 has no bundled schema" in unsupported.stderr
