"""Ops repo sync against real git repositories: a bare "remote" and an author clone in tmp_path."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reconciler.errors import InputError, OpsRepoError
from reconciler.repos.checkout import SyncResult, checkout_dir, current_sha, sync_repo
from tests.integration.repos.conftest import Remote, git

# --------------------------------------------------------------------------------------------
# Helpers


def snapshot(checkout: Path) -> dict[str, bytes]:
    """Every file of the working tree (outside .git) and the checked-out commit."""
    files = {
        path.relative_to(checkout).as_posix(): path.read_bytes()
        for path in sorted(checkout.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(checkout).parts
    }
    files["<HEAD>"] = git("rev-parse", "HEAD", cwd=checkout).encode()
    return files


def process_is_gone(pid: int) -> bool:
    """True when the process no longer runs (an unreaped zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def directories_in(path: Path) -> list[str]:
    """Names of the directories (hidden ones included) directly inside ``path``."""
    return sorted(entry.name for entry in path.iterdir() if entry.is_dir())


def write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def http_server(status: int) -> Iterator[int]:
    """An HTTP server answering every request with ``status``; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="ops"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def error_texts(error: BaseException) -> str:
    """The message, repr and args of an error and of every error chained to it."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), *(repr(arg) for arg in current.args)]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


async def sync(remote: Remote, repos_dir: Path, **overrides: object) -> SyncResult:
    arguments: dict[str, object] = {
        "name": "ops",
        "url": remote.url,
        "branch": remote.branch,
        "repos_dir": repos_dir,
    }
    arguments.update(overrides)
    return await sync_repo(**arguments)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Syncing


async def test_first_sync_clones_the_branch(remote: Remote, repos_dir: Path) -> None:
    """The first sync clones the branch into repos_dir/name and reports it as changed."""
    result = await sync(remote, repos_dir)

    assert result == SyncResult(checkout=repos_dir / "ops", sha=remote.tip(), changed=True)
    assert (result.checkout / "web" / "deployment.yaml").read_text() == "kind: Deployment\n"
    assert git("config", "--get", "remote.origin.url", cwd=result.checkout) == remote.url
    assert current_sha(result.checkout) == remote.tip()


async def test_relative_repos_dir_is_made_absolute(
    remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative repos_dir works, and the checkout is returned as an absolute path."""
    monkeypatch.chdir(tmp_path)
    await sync(remote, Path("repos"))
    remote.commit({"web/new.yaml": "kind: Service\n"})

    result = await sync(remote, Path("repos"))

    assert result.checkout == tmp_path / "repos" / "ops"
    assert result.changed is True
    assert current_sha(Path("repos") / "ops") == remote.tip()


async def test_new_commit_is_checked_out(remote: Remote, repos_dir: Path) -> None:
    """A new commit on the remote is checked out and reported as changed with its sha."""
    first = await sync(remote, repos_dir)
    new_sha = remote.commit({"web/deployment.yaml": "kind: Deployment\nreplicas: 2\n"})

    result = await sync(remote, repos_dir)

    assert new_sha != first.sha
    assert result.sha == new_sha
    assert result.changed is True
    assert "replicas: 2" in (result.checkout / "web" / "deployment.yaml").read_text()


async def test_unchanged_remote_reports_no_change_and_discards_local_edits(
    remote: Remote, repos_dir: Path
) -> None:
    """Without a new commit, changed is False, and local edits and untracked files are gone."""
    first = await sync(remote, repos_dir)
    (first.checkout / "README").write_text("edited by hand\n")
    (first.checkout / "stray.yaml").write_text("kind: Stray\n")
    (first.checkout / "build").mkdir()
    (first.checkout / "build" / "out.txt").write_text("x")

    result = await sync(remote, repos_dir)

    assert result.changed is False
    assert result.sha == first.sha
    assert (result.checkout / "README").read_text() == "ops\n"
    assert not (result.checkout / "stray.yaml").exists()
    assert not (result.checkout / "build").exists()


async def test_force_pushed_history_is_followed(remote: Remote, repos_dir: Path) -> None:
    """A rewritten remote history replaces the local one; nothing is merged."""
    remote.commit({"web/extra.yaml": "kind: ConfigMap\n"}, message="two")
    first = await sync(remote, repos_dir)
    rewritten = remote.rewrite_last_commit({"web/extra.yaml": "kind: Secret\n"})

    result = await sync(remote, repos_dir)

    assert result.sha == rewritten
    assert result.changed is True
    assert first.sha not in git("log", "--format=%H", cwd=result.checkout).split()
    assert (result.checkout / "web" / "extra.yaml").read_text() == "kind: Secret\n"


async def test_deleted_branch_fails_and_keeps_the_checkout(remote: Remote, repos_dir: Path) -> None:
    """A branch deleted on the remote gives an error naming it; the checkout stays as it was."""
    first = await sync(remote, repos_dir)
    before = snapshot(first.checkout)
    git("update-ref", "-d", "refs/heads/main", cwd=remote.bare)

    with pytest.raises(OpsRepoError, match="branch 'main' does not exist on the remote"):
        await sync(remote, repos_dir)

    assert snapshot(first.checkout) == before
    assert current_sha(first.checkout) == first.sha


async def test_missing_branch_on_first_clone_is_reported(remote: Remote, repos_dir: Path) -> None:
    """Cloning a branch the remote lacks names the branch and leaves no directory behind."""
    with pytest.raises(OpsRepoError, match="branch 'release' does not exist on the remote"):
        await sync(remote, repos_dir, branch="release")

    assert directories_in(repos_dir) == []


async def test_deleted_remote_fails_and_keeps_the_checkout(remote: Remote, repos_dir: Path) -> None:
    """A remote that disappeared gives 'repository not found'; the checkout stays as it was."""
    first = await sync(remote, repos_dir)
    before = snapshot(first.checkout)
    shutil.rmtree(remote.bare)

    with pytest.raises(OpsRepoError, match="repository not found") as caught:
        await sync(remote, repos_dir)

    assert "ops repo 'ops'" in str(caught.value)
    assert snapshot(first.checkout) == before


async def test_unreachable_remote_is_reported(repos_dir: Path) -> None:
    """A remote nobody listens on gives 'remote unreachable' and creates no checkout."""
    url = f"http://127.0.0.1:{unused_port()}/ops.git"

    with pytest.raises(OpsRepoError, match="remote unreachable"):
        await sync_repo(name="ops", url=url, branch="main", repos_dir=repos_dir)

    assert not (repos_dir / "ops").exists()


async def test_http_not_found_is_reported(repos_dir: Path) -> None:
    """An HTTP 404 from the remote is reported as 'repository not found'."""
    with http_server(404) as port, pytest.raises(OpsRepoError, match="repository not found"):
        await sync_repo(
            name="ops",
            url=f"http://127.0.0.1:{port}/ops.git",
            branch="main",
            repos_dir=repos_dir,
        )


@pytest.mark.parametrize(
    ("url_template", "secret"),
    [
        ("http://deployer:s3cr3t-Passw0rd@127.0.0.1:{port}/ops.git", "s3cr3t-Passw0rd"),
        ("http://ghp_T0kenAsUserName@127.0.0.1:{port}/ops.git", "ghp_T0kenAsUserName"),
        ("http://127.0.0.1:{port}/ops.git?access_token=qu3ryT0ken", "qu3ryT0ken"),
    ],
)
async def test_credentials_never_appear_in_errors(
    repos_dir: Path, url_template: str, secret: str
) -> None:
    """Refused credentials give 'authentication failed' and never appear in the error chain."""
    with http_server(401) as port:
        url = url_template.format(port=port)
        with pytest.raises(OpsRepoError) as caught:
            await sync_repo(name="ops", url=url, branch="main", repos_dir=repos_dir)

    assert "authentication failed" in str(caught.value)
    assert secret not in error_texts(caught.value)


async def test_credentials_are_redacted_when_the_remote_is_unreachable(repos_dir: Path) -> None:
    """An unreachable remote with credentials in its URL never shows them in the error."""
    url = f"https://deployer:s3cr3t-Passw0rd@127.0.0.1:{unused_port()}/ops.git"

    with pytest.raises(OpsRepoError) as caught:
        await sync_repo(name="ops", url=url, branch="main", repos_dir=repos_dir)

    assert "https://***@127.0.0.1" in str(caught.value)
    assert "s3cr3t-Passw0rd" not in error_texts(caught.value)


async def test_slow_fetch_times_out_kills_git_and_keeps_the_checkout(
    remote: Remote, repos_dir: Path, tmp_path: Path
) -> None:
    """A remote that never answers is abandoned after timeout_s; git's helpers are killed."""
    first = await sync(remote, repos_dir)
    before = snapshot(first.checkout)
    pid_file = tmp_path / "upload-pack.pid"
    slow = write_script(tmp_path / "slow-upload-pack", f'echo $$ > "{pid_file}"\nexec sleep 60\n')
    git("config", "remote.origin.uploadpack", str(slow), cwd=first.checkout)
    remote.commit({"web/new.yaml": "kind: Service\n"})

    with pytest.raises(OpsRepoError, match=r"timed out after 2 s while fetching branch 'main'"):
        await sync(remote, repos_dir, timeout_s=2)

    assert process_is_gone(int(pid_file.read_text()))
    assert snapshot(first.checkout) == before


async def test_slow_clone_times_out_and_leaves_nothing_behind(repos_dir: Path) -> None:
    """A clone from a remote that accepts but never answers times out and leaves no directory."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/ops.git"

        with pytest.raises(OpsRepoError, match=r"timed out after 1\.5 s while cloning"):
            await sync_repo(name="ops", url=url, branch="main", repos_dir=repos_dir, timeout_s=1.5)

    assert directories_in(repos_dir) == []


async def test_cancelling_a_sync_kills_git(remote: Remote, repos_dir: Path, tmp_path: Path) -> None:
    """Cancelling the awaiting task stops git and keeps the checkout as it was."""
    first = await sync(remote, repos_dir)
    before = snapshot(first.checkout)
    pid_file = tmp_path / "upload-pack.pid"
    slow = write_script(tmp_path / "slow-upload-pack", f'echo $$ > "{pid_file}"\nexec sleep 60\n')
    git("config", "remote.origin.uploadpack", str(slow), cwd=first.checkout)

    task = asyncio.create_task(sync(remote, repos_dir, timeout_s=60))
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    pid = int(pid_file.read_text())
    for _ in range(200):
        if process_is_gone(pid):
            break
        await asyncio.sleep(0.05)
    assert process_is_gone(pid)
    assert snapshot(first.checkout) == before


async def test_half_clone_is_replaced_by_a_fresh_clone(remote: Remote, tmp_path: Path) -> None:
    """A checkout dir that is not a usable repo (and crash leftovers) is replaced by a clone."""
    # repos_dir inside another work tree: git must never fall through to that repository.
    outer = tmp_path / "outer"
    outer.mkdir()
    git("init", "--quiet", cwd=outer)
    (outer / "precious.txt").write_text("keep me\n")
    repos_dir = outer / "repos"
    half = repos_dir / "ops"
    (half / ".git" / "objects").mkdir(parents=True)
    (half / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (half / "partial.yaml").write_text("kind: Partial\n")
    (repos_dir / ".ops.clone-abc123").mkdir()
    no_git = repos_dir / "other"
    no_git.mkdir()
    (no_git / "junk.txt").write_text("junk\n")

    result = await sync(remote, repos_dir)
    other = await sync(remote, repos_dir, name="other")

    assert result.changed is True
    assert result.sha == remote.tip()
    assert not (result.checkout / "partial.yaml").exists()
    assert (result.checkout / "web" / "deployment.yaml").exists()
    assert other.sha == remote.tip()
    assert not (other.checkout / "junk.txt").exists()
    assert not (repos_dir / ".ops.clone-abc123").exists()
    assert (outer / "precious.txt").read_text() == "keep me\n"


async def test_url_change_switches_the_origin(
    remote: Remote, repos_dir: Path, tmp_path: Path
) -> None:
    """When the ops repo URL changes, the checkout follows the new remote."""
    await sync(remote, repos_dir)
    moved = Remote(tmp_path / "remote-b")
    moved_sha = moved.commit({"web/deployment.yaml": "kind: Deployment\nfrom: b\n"})

    result = await sync(moved, repos_dir)

    assert result.sha == moved_sha
    assert result.changed is True
    assert git("config", "--get", "remote.origin.url", cwd=result.checkout) == moved.url
    assert "from: b" in (result.checkout / "web" / "deployment.yaml").read_text()
    assert not (result.checkout / "README").exists()


async def test_branch_change_checks_out_the_new_branch(remote: Remote, repos_dir: Path) -> None:
    """When the ops repo branch changes, the checkout moves to the new branch's tip."""
    await sync(remote, repos_dir)
    git("checkout", "--quiet", "-b", "staging", cwd=remote.author)
    remote.branch = "staging"
    staging_sha = remote.commit({"web/staging.yaml": "kind: ConfigMap\n"})

    result = await sync(remote, repos_dir)

    assert result.sha == staging_sha
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=result.checkout) == "staging"
    assert (result.checkout / "web" / "staging.yaml").exists()


async def test_stale_index_lock_is_recovered_by_recloning(remote: Remote, repos_dir: Path) -> None:
    """A checkout that fetches but cannot be reset (stale index.lock) is rebuilt from a clone."""
    first = await sync(remote, repos_dir)
    (first.checkout / ".git" / "index.lock").write_text("")
    new_sha = remote.commit({"web/new.yaml": "kind: Service\n"})

    result = await sync(remote, repos_dir)

    assert result.sha == new_sha
    assert result.changed is True
    assert not (result.checkout / ".git" / "index.lock").exists()
    assert (result.checkout / "web" / "new.yaml").exists()


async def test_syncs_of_two_repos_run_concurrently(tmp_path: Path, repos_dir: Path) -> None:
    """Two repos sync at the same time: each remote waits until the other one was reached."""
    remotes = {name: Remote(tmp_path / f"remote-{name}") for name in ("alpha", "beta")}
    for name, created in remotes.items():
        created.commit({"README": f"{name}\n"})
        await sync(created, repos_dir, name=name)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        # Gives up after ten seconds, which fails the fetch: only overlapping syncs succeed.
        script = write_script(
            tmp_path / f"upload-pack-{name}",
            f'touch "{barrier / name}"\n'
            "tries=0\n"
            f'while [ ! -e "{barrier / other}" ]; do\n'
            "  tries=$((tries + 1))\n"
            '  [ "$tries" -gt 200 ] && exit 1\n'
            "  sleep 0.05\n"
            "done\n"
            'exec git upload-pack "$@"\n',
        )
        git("config", "remote.origin.uploadpack", str(script), cwd=repos_dir / name)
    new_shas = {name: created.commit({"README": "second\n"}) for name, created in remotes.items()}

    results = await asyncio.gather(
        *(sync(created, repos_dir, name=name, timeout_s=30) for name, created in remotes.items())
    )

    assert {result.checkout.name: result.sha for result in results} == new_shas


async def test_concurrent_syncs_of_one_repo_take_turns(remote: Remote, repos_dir: Path) -> None:
    """Two syncs of the same repo run one after the other: exactly one of them sees the change."""
    await sync(remote, repos_dir)
    new_sha = remote.commit({"web/new.yaml": "kind: Service\n"})

    results = await asyncio.gather(sync(remote, repos_dir), sync(remote, repos_dir))

    assert [result.sha for result in results] == [new_sha, new_sha]
    assert sorted(result.changed for result in results) == [False, True]


async def test_invalid_arguments_are_refused_before_touching_disk(
    remote: Remote, repos_dir: Path
) -> None:
    """Invalid names, URLs and branches raise InputError and create nothing."""
    with pytest.raises(InputError, match="not a slug"):
        await sync(remote, repos_dir, name="../escape")
    with pytest.raises(InputError, match="unsupported"):
        await sync(remote, repos_dir, url="ext::git-upload-pack")
    with pytest.raises(InputError, match="not a valid git branch name"):
        await sync(remote, repos_dir, branch="main..evil")
    with pytest.raises(InputError, match="not a valid git branch name"):
        await sync(remote, repos_dir, branch="--upload-pack=evil")
    with pytest.raises(InputError, match="timeout must be a positive number"):
        await sync(remote, repos_dir, timeout_s=0)

    assert repos_dir.name not in directories_in(repos_dir.parent)


def test_current_sha_is_none_without_a_checkout(tmp_path: Path) -> None:
    """current_sha is None for a missing directory and for a directory that is not a repo."""
    (tmp_path / "plain").mkdir()

    assert current_sha(tmp_path / "missing") is None
    assert current_sha(tmp_path / "plain") is None


# --------------------------------------------------------------------------------------------
# Names


def test_checkout_dir_joins_a_slug(tmp_path: Path) -> None:
    """checkout_dir is repos_dir / name for a slug."""
    assert checkout_dir(repos_dir=tmp_path, name="web-ops_2") == tmp_path / "web-ops_2"


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", ".hidden", "with space", "a.b"])
def test_checkout_dir_refuses_non_slugs(tmp_path: Path, name: str) -> None:
    """checkout_dir refuses names that could leave repos_dir or clash with hidden entries."""
    with pytest.raises(InputError, match="not a slug"):
        checkout_dir(repos_dir=tmp_path, name=name)
