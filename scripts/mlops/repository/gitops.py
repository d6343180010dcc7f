"""Git operations for promote and rollback: clean-tree check, commits built off the checkout, safe pushes.

A promote builds its commit with git plumbing (a private index file, `commit-tree`) on top
of the remote branch's tip, so the user's checkout, index and branch are never touched
until the push has succeeded; only then is the local branch fast-forwarded. A failure at
any step therefore leaves the repository as it was (the remote-tracking ref may move, as
with any `git fetch`).
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops.conventions.errors import MlopsError

NETWORK_TIMEOUT_S = 120
"""A fetch or push that takes longer than this is treated as a network failure."""

PUSH_ATTEMPTS = 20
"""Pushes tried before giving up when others keep pushing first (ten racing promotes need at most ten)."""

# What git's per-ref push status says when someone else updated the ref first. `[rejected]` is
# the client's verdict before sending (the remote tip is not an ancestor). `[remote rejected]`
# with a ref-update reason is the remote's ref transaction failing: a race when the ref has
# moved since we fetched it (checked with ls-remote), permanent otherwise. Every other
# `[remote rejected]` (a hook, branch protection) is permanent: retrying cannot help.
_RACE_REJECTIONS = ("fetch first", "non-fast-forward", "stale info")
_REF_UPDATE_FAILURES = ("cannot lock ref", "failed to update ref", "incorrect old value", "failed to lock")
_LOCAL_WRITE_FAILURES = (
    "permission denied",
    "read-only file system",
    "unable to create",
    "unable to write",
    "insufficient permission",
    "cannot lock ref",
)


class GitError(MlopsError):
    """A git command failed; the message carries git's own explanation."""


class RemoteUnreachableError(GitError):
    """The remote could not be reached (no network, wrong URL, missing path, no credentials)."""


class PushRefusedError(GitError):
    """The remote refused the push for a reason other than a race (a hook, branch protection)."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Never wait for a password prompt: the git-bot has no terminal, a person gets a clear error.
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=20")
    env["LC_ALL"] = "C"  # rejection reasons are matched in English
    return env


def git(
    repo: Path,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `git -C repo args...` and return the finished process; raise GitError when it fails."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            input=input,
            capture_output=True,
            text=True,
            env={**_env(), **(env or {})},
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise RemoteUnreachableError(
            f"git {args[0]} in {repo} did not finish within {timeout:.0f} s: check the network and the remote"
        ) from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(
            f"git {' '.join(args[:2])} failed in {repo}: {' / '.join(detail[-3:]) or proc.returncode}"
        )
    return proc


def clone(url: str | Path, dest: Path) -> Path:
    """Clone `url` (a remote URL or a local bare repository) into the new folder `dest`; return `dest`."""
    git(dest.parent, "clone", "--quiet", str(url), str(dest))
    return dest


def dirty_files(repo: Path) -> list[str]:
    """Return tracked files with uncommitted (staged or unstaged) changes."""
    out = git(repo, "status", "--porcelain", "--untracked-files=no").stdout
    return [line[3:] for line in out.splitlines() if line.strip()]


def require_clean(repo: Path) -> None:
    """Raise when tracked files have uncommitted changes, naming them."""
    dirty = dirty_files(repo)
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise GitError(
            f"working tree of {repo} has uncommitted changes ({shown}): commit or discard them first; "
            "promote and rollback commit from a clean checkout"
        )


def require_writable(repo: Path) -> None:
    """Raise when this user cannot write the clone's git directory (objects, refs), which promote needs.

    Checked before anything else so a read-only clone is reported as what it is, not as a
    fetch that failed "because of the network".
    """
    common = git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip()
    for path in (Path(common), Path(common) / "objects", Path(common) / "refs"):
        if not os.access(path, os.W_OK):
            raise GitError(
                f"{path} is not writable by this user: promote and rollback write commits and refs "
                "into the clone's git directory; fix its permissions or use a writable clone "
                "(nothing was changed)"
            )


def current_branch(repo: Path) -> str | None:
    """Return the checked-out branch, or None when HEAD is detached."""
    proc = git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return proc.stdout.strip() or None


def rev_parse(repo: Path, rev: str) -> str | None:
    """Return the commit `rev` names, or None when it names nothing."""
    proc = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    return proc.stdout.strip() or None


def remote_url(repo: Path, remote: str) -> str:
    """Return the fetch URL of `remote`; raise when the remote is not configured."""
    proc = git(repo, "remote", "get-url", remote, check=False)
    if proc.returncode != 0:
        raise GitError(f"{repo} has no git remote named {remote!r}: add it or pass --remote")
    return proc.stdout.strip()


def _local_write_failure(stderr: str, repo: Path) -> bool:
    """Whether git failed writing into the clone itself (not the remote: ssh's "Permission denied" is not)."""
    for line in stderr.lower().splitlines():
        local = str(repo).lower() in line or "fetch_head" in line or "refs/remotes/" in line
        if local and any(failure in line for failure in _LOCAL_WRITE_FAILURES):
            return True
    return False


def fetch(repo: Path, remote: str, branch: str) -> str | None:
    """Fetch `branch` into `refs/remotes/<remote>/<branch>`; return its tip, or None if it is absent."""
    url = remote_url(repo, remote)
    proc = git(
        repo, "fetch", "--quiet", "--no-tags", remote,
        f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}",
        timeout=NETWORK_TIMEOUT_S, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        if "couldn't find remote ref" in proc.stderr:
            return None
        detail = " / ".join(proc.stderr.strip().splitlines()[-2:])
        if _local_write_failure(proc.stderr, repo):
            raise GitError(
                f"fetching {branch} from remote {remote!r} reached the remote but could not write into "
                f"the clone {repo}: {detail}: check the permissions and free space of its .git "
                "directory; nothing was changed"
            )
        raise RemoteUnreachableError(
            f"cannot fetch {branch} from remote {remote!r} ({url}): {detail}: "
            "check the network, the URL and the credentials; nothing was changed"
        )
    return rev_parse(repo, f"refs/remotes/{remote}/{branch}")


def show_file(repo: Path, rev: str, path: str) -> str | None:
    """Return the text of `path` at `rev`, or None when the file does not exist there."""
    proc = git(repo, "show", f"{rev}:{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def commit_file(repo: Path, parent: str, path: str, text: str, message: str) -> str:
    """Create a commit on top of `parent` that changes only `path` to `text`; return its sha.

    Uses a private index file so the checkout's index and working tree are not touched.
    """
    return commit_files(repo, parent, {path: text}, message)


def commit_files(repo: Path, parent: str, changes: dict[str, str | None], message: str) -> str:
    """Like `commit_file`, for several paths at once: each to its new text, or removed when None.

    Canary analysis needs one commit that moves a version, removes the canary folder and
    edits the routes together, so Argo CD never syncs half of it.
    """
    with tempfile.TemporaryDirectory(prefix="mlops-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", parent, env=env)
        for path, text in sorted(changes.items()):
            if text is None:
                git(repo, "update-index", "--force-remove", path, env=env)
                continue
            blob = git(repo, "hash-object", "-w", "--stdin", input=text).stdout.strip()
            git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git(repo, "write-tree", env=env).stdout.strip()
    proc = git(repo, "commit-tree", tree, "-p", parent, "-F", "-", input=message, check=False)
    if proc.returncode != 0:
        # git's advice comes first; its `fatal:` line says what is missing
        reason = " / ".join(line for line in proc.stderr.strip().splitlines() if line.startswith("fatal"))
        raise GitError(
            f"cannot commit in {repo}: {reason or proc.stderr.strip()}: set the commit identity with "
            "`git config user.name ...` and `git config user.email ...`"
        )
    return proc.stdout.strip()


def archive(repo: Path, rev: str) -> bytes:
    """Return the tracked files of `rev` as a tar archive; raise naming the revision when git cannot."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", rev], capture_output=True, env=_env()
    )
    if proc.returncode != 0:
        raise GitError(
            f"cannot export {rev!r} from {repo}: {proc.stderr.decode(errors='replace').strip()}: "
            "pass a commit, branch or tag that exists (git fetch first for a remote branch)"
        )
    return proc.stdout


def list_files(repo: Path, rev: str, folder: str) -> list[str]:
    """Return the paths of the files under `folder` at `rev` (empty when it does not exist there)."""
    return git(repo, "ls-tree", "-r", "--name-only", rev, "--", folder).stdout.split()


@dataclass
class PushResult:
    """What a push did: the commit that landed (None when nothing needed doing) and the attempts it took.

    `existing` is True when the commit was already there (another run pushed the same proposal).
    """

    commit: str | None
    attempts: int
    base: str | None
    existing: bool = False


@dataclass
class RefStatus:
    """git's own verdict on one pushed ref (a `git push --porcelain` status line)."""

    flag: str
    summary: str
    reason: str

    @property
    def behind(self) -> bool:
        """Whether git refused to send because the remote ref has commits we lack (someone pushed first)."""
        return self.flag == "!" and self.summary == "[rejected]" and self.reason in _RACE_REJECTIONS

    @property
    def update_failed(self) -> bool:
        """Whether the remote accepted the objects but could not update the ref (a lock, a moved ref)."""
        return (
            self.flag == "!"
            and self.summary == "[remote rejected]"
            and self.reason.startswith(_REF_UPDATE_FAILURES)
        )


def ref_status(porcelain: str, ref: str) -> RefStatus | None:
    r"""Return the status of `ref` from `git push --porcelain` output, or None when it has none.

    A line is `<flag>\t<src>:<dst>\t<summary> (<reason>)`; only the line for `ref` is read, never
    the remote's free-text `remote:` lines (a hook may print anything there).
    """
    for line in porcelain.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[1].endswith(f":{ref}"):
            continue
        summary, _, reason = parts[2].partition(" (")
        return RefStatus(flag=parts[0], summary=summary.strip(), reason=reason.rstrip(")").strip())
    return None


def _remote_tip(repo: Path, remote: str, ref: str) -> str | None:
    proc = git(repo, "ls-remote", remote, ref, timeout=NETWORK_TIMEOUT_S, check=False)
    return proc.stdout.split("\t", 1)[0].strip() or None if proc.returncode == 0 else None


def push_commit(repo: Path, remote: str, sha: str, ref: str, expected: str | None = None) -> bool:
    """Push `sha` to `ref`; return False when someone else pushed first (retry), raise on other failures.

    `expected` is the ref's tip the commit was built on: a failed ref update is a race only
    when the ref no longer points there (None: any failed ref update counts as a race).
    """
    force = ref.startswith("+")  # "+": replace the branch
    dst = ref[1:] if force else ref
    refspec = f"+{sha}:{dst}" if force else f"{sha}:{dst}"
    proc = git(repo, "push", "--porcelain", remote, refspec, timeout=NETWORK_TIMEOUT_S, check=False)
    status = ref_status(proc.stdout, dst)
    if proc.returncode == 0:
        return True
    if status is not None and status.behind:
        return False
    if status is not None and status.update_failed:
        if expected is None or _remote_tip(repo, remote, dst) != expected:
            return False
    if status is not None and status.flag == "!":
        said = [line.removeprefix("remote:").strip() for line in proc.stderr.splitlines()]
        said = [line for line in said if line and not line.startswith(("error:", "To ", "hint:"))]
        told = f"; the remote said: {' / '.join(said[-3:])}" if said else ""
        raise PushRefusedError(
            f"push of {dst} to remote {remote!r} was refused: {status.summary} ({status.reason}){told}: "
            "this is the remote's decision, not a race, so it was not retried; nothing was changed"
        )
    text = proc.stdout + proc.stderr
    detail = " / ".join(line for line in text.strip().splitlines()[-3:] if line != "Done")
    raise RemoteUnreachableError(
        f"cannot push {ref} to remote {remote!r} ({remote_url(repo, remote)}): {detail}: "
        "check the network, the URL and the credentials"
    )


def commit_and_push(
    repo: Path,
    remote: str,
    fetch_branch: str,
    push_ref: str,
    build: Callable[[str], str | None],
    *,
    attempts: int = PUSH_ATTEMPTS,
) -> PushResult:
    """Build a commit on the remote tip of `fetch_branch` and push it to `push_ref`, retrying on races.

    `build(base_sha)` returns the commit to push (made with `commit_file` on `base_sha`) or None
    when the change is already there. When the push is rejected because someone else pushed
    first, fetch again and call `build` on the new tip: this is the rebase. The edit is
    re-applied to the new file rather than replayed as a textual patch, because two promotes
    of one model touch the same line, and the commit message must name the version it
    actually replaces. Waits grow exponentially with full jitter so racing clones spread out.
    """
    for attempt in range(1, attempts + 1):
        base = fetch(repo, remote, fetch_branch)
        if base is None:
            raise GitError(f"remote {remote!r} has no branch {fetch_branch!r}: pass --branch")
        sha = build(base)
        if sha is None:
            return PushResult(commit=None, attempts=attempt, base=base)
        # a forced push replaces whatever is there, so a failed update of it is always a race
        if push_commit(repo, remote, sha, push_ref, None if push_ref.startswith("+") else base):
            return PushResult(commit=sha, attempts=attempt, base=base)
        time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
    raise GitError(
        f"push to {push_ref} on remote {remote!r} was rejected {attempts} times because others kept "
        "pushing first: try again in a minute; nothing was changed"
    )


@dataclass(frozen=True)
class RemoteBranch:
    """A clone and the branch of its remote that a write lands on (the branch Argo CD follows).

    Attributes:
        repo: the clone; commits are built in its object store, never in its working tree.
        remote: the git remote to fetch from and push to.
        branch: the branch on that remote.
    """

    repo: Path
    remote: str
    branch: str

    @property
    def where(self) -> str:
        """How messages name it: `origin/main`."""
        return f"{self.remote}/{self.branch}"

    def tip(self) -> str:
        """Fetch the branch and return its tip; raise when the remote has no such branch."""
        tip = fetch(self.repo, self.remote, self.branch)
        if tip is None:
            raise GitError(
                f"remote {self.remote!r} has no branch {self.branch!r}: pass --branch the branch Argo CD "
                f"follows (main); to put the change on a new branch for review, pass --propose {self.branch}"
            )
        return tip


def fast_forward(repo: Path, branch: str, sha: str) -> bool:
    """Move the checked-out `branch` to `sha` when that is a clean fast-forward; return whether it moved."""
    if current_branch(repo) != branch or dirty_files(repo):
        return False
    head = rev_parse(repo, "HEAD")
    if head and git(repo, "merge-base", "--is-ancestor", head, sha, check=False).returncode != 0:
        return False
    return git(repo, "merge", "--ff-only", "--quiet", sha, check=False).returncode == 0


@dataclass
class FileCommit:
    """A commit that changed a file, with the file's text after it."""

    sha: str
    date: str
    subject: str
    text: str | None


def file_history(repo: Path, rev: str, path: str, *, limit: int = 200) -> list[FileCommit]:
    """Return the commits reachable from `rev` that changed `path`, newest first, with its text at each."""
    out = git(repo, "log", f"-{limit}", "--format=%H%x1f%cI%x1f%s", rev, "--", path).stdout
    history = []
    for line in out.splitlines():
        sha, date, subject = line.split("\x1f", 2)
        history.append(FileCommit(sha=sha, date=date, subject=subject, text=show_file(repo, sha, path)))
    return history


def last_commit(repo: Path, rev: str, path: str) -> FileCommit | None:
    """Return the newest commit reachable from `rev` that changed `path` (without the file text)."""
    out = git(repo, "log", "-1", "--format=%H%x1f%cI%x1f%s", rev, "--", path, check=False).stdout.strip()
    if not out:
        return None
    sha, date, subject = out.split("\x1f", 2)
    return FileCommit(sha=sha, date=date, subject=subject, text=None)
