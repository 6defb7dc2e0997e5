"""A local PostgreSQL server: throwaway for tests, ``.data/pg`` for local runs.

Finds Debian's server binaries, runs ``initdb`` once into a data directory, and serves on a unix
socket only (no TCP port to collide with).  initdb refuses to run as root, so when we are root the
server runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from reconciler.errors import DatabaseRefused

_SOCKET_PORT = 5432


def find_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if out.returncode == 0 and (candidate / "initdb").exists():
            return candidate
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
    )
    for candidate_dir in reversed(versions):
        if Path(candidate_dir, "initdb").exists():
            return Path(candidate_dir)
    raise DatabaseRefused(
        "PostgreSQL server binaries not found (no pg_config --bindir, no "
        "/usr/lib/postgresql/*/bin/initdb): install them with 'apt-get install -y postgresql'"
    )


class LocalPostgres:
    """A PostgreSQL server in ``data_dir`` listening on a unix socket in a short temporary path.

    Use as a context manager, or ``start()`` / ``stop()``.  ``url`` is a ``postgresql://`` URL to
    the ``postgres`` database as the ``postgres`` superuser (trust auth on the socket only).
    """

    def __init__(self, *, data_dir: Path, keep_data: bool = True) -> None:
        self.data_dir = data_dir
        self.keep_data = keep_data
        self._bindir = find_bindir()
        self._socket_dir: Path | None = None
        self._run_as = _server_user()

    @property
    def socket_dir(self) -> Path:
        if self._socket_dir is None:
            raise DatabaseRefused("the local PostgreSQL is not started")
        return self._socket_dir

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={_SOCKET_PORT}"

    def start(self) -> str:
        # Unix socket paths are limited to ~107 bytes: keep the directory short.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="rpg-", dir="/tmp"))
        self._chown(self._socket_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        log_file = self.data_dir.parent / f"{self.data_dir.name}.log"
        if self._run_as is not None and not log_file.exists():
            log_file.touch()
            self._chown(log_file)
        # A server left running by a crash holds the data dir: stop it before starting ours.
        self._pg_ctl("stop", "-m", "immediate", check=False)
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(log_file), "-o", self._options())
        return self.url()

    def stop(self) -> None:
        if self._socket_dir is None:
            return
        self._pg_ctl("stop", "-m", "fast", "-w", check=False)
        shutil.rmtree(self._socket_dir, ignore_errors=True)
        self._socket_dir = None
        if not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            shutil.rmtree(self.data_dir.parent / f"{self.data_dir.name}.log", ignore_errors=True)

    def restart(self) -> None:
        """Stop the server immediately and start it again on the same socket (for fault tests)."""
        self.kill()
        log_file = self.data_dir.parent / f"{self.data_dir.name}.log"
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(log_file), "-o", self._options())

    def kill(self) -> None:
        """Stop the server at once, as a crash would (the socket directory stays)."""
        self._pg_ctl("stop", "-m", "immediate", "-w", check=False)

    def _options(self) -> str:
        # Surviving a crash of the machine is not wanted from a throwaway server; speed is, so
        # nothing is fsynced.  synchronous_commit stays on: it costs a write() per commit here,
        # and without it kill() would lose commits the server had acknowledged, which a
        # crashed production server never does and fault tests must not see.
        return (
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' "
            f"-c port={_SOCKET_PORT} -c fsync=off "
            "-c full_page_writes=off -c max_connections=300"
        )

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None and self.data_dir.parent.stat().st_uid == os.geteuid():
            # The server user must be able to reach its data dir (mkdtemp makes 0700 dirs).
            os.chmod(self.data_dir.parent, self.data_dir.parent.stat().st_mode | 0o711)
        self._chown(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        self._run(
            [
                str(self._bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ]
        )

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        self._run([str(self._bindir / "pg_ctl"), "-D", str(self.data_dir), *args], check=check)

    def _run(self, argv: list[str], *, check: bool = True) -> None:
        program = Path(argv[0]).name
        if self._run_as is not None:
            argv = ["runuser", "-u", self._run_as, "--", *argv]
        result = subprocess.run(
            argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        if check and result.returncode != 0:
            raise DatabaseRefused(
                f"local PostgreSQL: {program} failed "
                f"(exit {result.returncode}): {(result.stderr or result.stdout).strip()[-2000:]}"
            )

    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _server_user() -> str | None:
    """None when we may run the server ourselves; 'postgres' when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise DatabaseRefused(
            "running as root, and PostgreSQL refuses root: create the 'postgres' user "
            "(apt-get install -y postgresql does)"
        ) from None
    return "postgres"
