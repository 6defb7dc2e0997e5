"""kubectl against fakekube: runs without blocking the event loop fakekube serves on."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Completed:
    """What a kubectl run returned."""

    returncode: int
    stdout: str
    stderr: str


class Kubectl:
    """kubectl against fakekube, with a cache directory of its own (discovery is per server)."""

    def __init__(self, kubeconfig: Path, cache_dir: Path, workdir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir
        self.workdir = workdir

    async def run(self, *args: str, check: bool = True, within: float = 60.0) -> Completed:
        """Runs kubectl without blocking the event loop fakekube serves on."""
        process = await asyncio.create_subprocess_exec(
            "kubectl",
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.cache_dir),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.workdir,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), within)
        result = Completed(process.returncode or 0, stdout.decode(), stderr.decode())
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed:\n{result.stderr}{result.stdout}"
            )
        return result

    def write(self, name: str, text: str) -> Path:
        """Writes a manifest file next to the kubeconfig and returns its path."""
        path = self.workdir / name
        path.write_text(text, encoding="utf-8")
        return path


@functools.cache
def kubectl_minor() -> int | None:
    """kubectl's client minor version, or None when kubectl is not installed."""
    if shutil.which("kubectl") is None:
        return None
    result = subprocess.run(
        ["kubectl", "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(json.loads(result.stdout)["clientVersion"]["minor"].rstrip("+"))
