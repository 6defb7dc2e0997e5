"""Ops repos for tests: a git repository in a temp dir playing an ops repo's remote."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

APP_TEMPLATES = {
    "configmap.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ project }}-config
        data:
          greeting: {{ values.greeting | tojson }}
        """,
    "deployment.yaml.j2": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ project }}
        spec:
          replicas: {{ values.replicas }}
          progressDeadlineSeconds: 60
          selector:
            matchLabels: {app: {{ project }}}
          template:
            metadata:
              labels: {app: {{ project }}}
            spec:
              containers:
                - name: app
                  image: {{ image_ref }}
        """,
    "service.yaml": """\
        apiVersion: v1
        kind: Service
        metadata:
          name: {{ project }}
        spec:
          selector: {app: {{ project }}}
          ports: [{port: 80}]
        """,
}


class OpsRepoDir:
    """A git repository in a temp dir playing an ops repo's remote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._git("init", "-q", "-b", "main")

    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
            cwd=self.path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def write_project(
        self,
        project: str,
        *,
        replicas: int = 2,
        greeting: str = "hello",
        templates: dict[str, str] | None = None,
    ) -> None:
        folder = self.path / project
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in (templates or APP_TEMPLATES).items():
            (folder / name).write_text(textwrap.dedent(text))
        (folder / "values.yaml").write_text(f"replicas: {replicas}\ngreeting: {greeting}\n")

    def write(self, relative: str, text: str) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))

    def commit(self, message: str = "change") -> str:
        self._git("add", "-A")
        self._git("commit", "-q", "-m", message)
        return self._git("rev-parse", "HEAD")


def app_repo(path: Path) -> OpsRepoDir:
    """An ops repo remote at ``path`` with project 'app' committed."""
    ops = OpsRepoDir(path)
    ops.write_project("app")
    ops.commit("app")
    return ops


def add_projects(ops: OpsRepoDir, names: list[str]) -> None:
    """Commit one project folder per name (the example app's templates)."""
    for name in names:
        ops.write_project(name)
    ops.commit(f"{len(names)} projects")
