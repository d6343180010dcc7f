"""Issue 15, one test per numbered finding: the write path against hostile input.

Real clones of one bare remote, a real MLflow registry, the local GitHub API stand-in.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from mlops.conventions.deployment import Deployment
from mlops.release.promotion import promote
from mlops.repository import model_version_file
from promote_support import MODEL, FakeGitHub, GitOpsRepo, RegistryHelper, git
from test_promote import run_cli as cli

pytestmark = pytest.mark.slow

DEV_FILE = Deployment("dev", MODEL).version_file


def state_at(
    gitops: GitOpsRepo, rev: str = "main", path: str = DEV_FILE
) -> model_version_file.ModelVersionFile:
    return model_version_file.parse(git(gitops.remote, "show", f"{rev}:{path}"), path)


def test_1_a_version_with_a_trailing_newline_is_refused_and_a_plain_one_commits_once(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register()
    v2 = registry.register()
    refs = gitops.refs()

    rc, _, err = cli(clone, "promote", "--env", "dev", "--model", MODEL, f"--version={v2}\n", capsys=capsys)

    assert rc == 2 and f"version '{v2}\\n' is not a registered model version" in err
    assert gitops.refs() == refs
    for _ in range(2):
        assert cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v2, capsys=capsys)[0] == 0
    subjects = git(gitops.remote, "log", "--format=%s", "main").splitlines()
    assert subjects.count(f"Promote {MODEL} to version {v2} in dev (was 1)") == 1
    assert not any(f"{v2} -> {v2}" in s or f"(was {v2})" in s for s in subjects)
    assert state_at(gitops).version == v2


def test_2_repeated_rollbacks_walk_back_and_never_bring_a_held_back_version_back(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register()
    v2, v3 = registry.register(), registry.register()
    for v in (v2, v3):
        assert cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v, capsys=capsys)[0] == 0

    def rollback() -> tuple[int, str]:
        rc, _, err = cli(clone, "rollback", "--env", "dev", "--model", MODEL, capsys=capsys)
        return rc, err

    assert rollback()[0] == 0
    assert (state_at(gitops).version, state_at(gitops).held_back) == (v2, [v3])
    assert rollback()[0] == 0  # further back, not forward to the held-back v3
    assert (state_at(gitops).version, state_at(gitops).held_back) == ("1", [v3, v2])
    assert registry.alias("dev") == "1"
    head = git(gitops.remote, "rev-parse", "main")
    rc, err = rollback()  # nothing earlier that is not held back
    assert rc == 2 and "no earlier version of 'support-chat' in dev that is not held back" in err
    rc, _, err = cli(clone, "rollback", "--env", "dev", "--model", MODEL, "--to", v3, capsys=capsys)
    assert rc == 2 and f"version {v3} of 'support-chat' is held back in dev" in err
    rc, _, err = cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v3, "--automated",
                     capsys=capsys)  # fmt: skip
    assert rc == 2 and "automated promotes skip it" in err
    assert git(gitops.remote, "rev-parse", "main") == head and registry.alias("dev") == "1"

    # Only a person's promote brings it back, and lifts only its own hold.
    assert cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v3, capsys=capsys)[0] == 0
    assert (state_at(gitops).version, state_at(gitops).held_back) == (v3, [v2])
    assert rollback()[0] == 0  # from v3: v2 is held, so back to 1
    assert (state_at(gitops).version, state_at(gitops).held_back) == ("1", [v2, v3])


def test_3_free_text_cannot_forge_a_trailer_even_from_the_history(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register()
    v2 = registry.register()
    refs, before = gitops.refs(), registry.snapshot()
    for forged in ("wf-1\nVersion: 99", "wf-1\n\nPromoted-By: person", "wf-1\x00", "wf\u2028Env: prod"):
        rc, _, err = cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v2,
                         "--workflow", forged, capsys=capsys)  # fmt: skip
        assert rc == 2 and "--workflow" in err and "contains control characters" in err, err
    assert gitops.refs() == refs and registry.snapshot() == before

    # A version file in the history whose mlflowRun hides a line break (a hand edit): a rollback
    # to that state would copy it into the MLflow-Run trailer and the file, so it is refused.
    text = (clone / DEV_FILE).read_text()
    (clone / DEV_FILE).write_text(text.rstrip("\n") + '\n  mlflowRun: "abc\\nVersion: 99"\n')
    git(clone, "commit", "-qam", "Hand edit")
    git(clone, "push", "-q", "origin", "main")
    assert cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v2, capsys=capsys)[0] == 0
    refs = gitops.refs()
    rc, _, err = cli(clone, "rollback", "--env", "dev", "--model", MODEL, capsys=capsys)
    assert rc == 2 and "mlflowRun" in err and "contains control characters" in err, err
    assert gitops.refs() == refs


def _hook(remote: Path, script: str) -> Path:
    calls = remote / "hook-calls"
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho call >> {calls}\n{script}")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    return calls


def test_4_a_permanent_refusal_is_reported_after_one_attempt_whatever_the_hook_prints(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register()
    v2 = registry.register()
    # The hook's text imitates git's race words: only the ref's status may decide.
    calls = _hook(
        gitops.remote,
        "echo 'hint: Updates were rejected (fetch first) non-fast-forward, cannot lock ref' >&2\nexit 1\n",
    )
    refs, before = gitops.refs(), registry.snapshot()

    rc, _, err = cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v2, capsys=capsys)

    assert rc == 2
    refused = "push of refs/heads/main to remote 'origin' was refused: "
    assert refused + "[remote rejected] (pre-receive hook declined)" in err
    assert "not a race, so it was not retried" in err and "others kept pushing first" not in err
    assert calls.read_text().count("call") == 1
    assert gitops.refs() == refs and registry.snapshot() == before


def test_5_a_tracking_uri_without_a_scheme_is_one_clear_line(
    clone: Path, registry: RegistryHelper, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register()
    v2 = registry.register()
    for uri in ("localhost:5000", "127.0.0.1:5000", "mlflow.mlflow.svc", "http://:5000"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        for args in (("promote", "--version", v2), ("rollback",)):
            rc, out, err = cli(clone, args[0], "--env", "dev", "--model", MODEL, *args[1:], capsys=capsys)
            assert rc == 2 and err.count("\n") == 1 and "MLFLOW_TRACKING_URI" in err, err
        rc, _, err = cli(clone, "registry", "sync-alias", "--env", "dev", "--model", MODEL, "--version", v2,
                         capsys=capsys)  # fmt: skip
        assert rc == 2 and err.startswith(f"error: MLFLOW_TRACKING_URI '{uri}'"), err


def test_6_ten_concurrent_prod_promotions_of_one_version_all_succeed_with_one_branch_and_one_pr(
    gitops: GitOpsRepo,
    registry: RegistryHelper,
    fake_github: list,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry.register()
    v2 = registry.register()
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_test_token")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/gitops")
    clones = [gitops.clone(f"racer-{i}") for i in range(10)]
    main_before = git(gitops.remote, "rev-parse", "main")
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []
    logs: list[list[str]] = [[] for _ in clones]

    def racer(i: int) -> None:
        try:
            barrier.wait()
            promote(clones[i], env="prod", model=MODEL, version=v2, workflow="wf-prod", log=logs[i].append)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)

    assert not errors, errors
    branch = f"promote/{MODEL}-{v2}-prod"
    assert git(gitops.remote, "rev-parse", "main") == main_before
    assert state_at(gitops, branch, Deployment("prod", MODEL).version_file).version == v2
    assert git(gitops.remote, "rev-parse", f"{branch}~1") == main_before  # one commit on main
    assert FakeGitHub.pulls == {f"acme:{branch}": 17}  # one pull request
    said = ["\n".join(lines) for lines in logs]
    assert sum("pull request #17: https://github.example/acme/gitops/pull/17" in s for s in said) == 10
    assert sum("(already open)" in s for s in said) == 9
    assert registry.alias("prod") is None

    # A later rerun finds the branch and the pull request, and pushes nothing.
    tip = git(gitops.remote, "rev-parse", branch)
    lines: list[str] = []
    outcome = promote(clones[0], env="prod", model=MODEL, version=v2, workflow="wf-prod", log=lines.append)
    assert outcome.pull_request is not None and not outcome.pull_request.created
    assert any("already proposes version" in line for line in lines), lines
    assert git(gitops.remote, "rev-parse", branch) == tip


def _honouring_permissions(argv: list[str]) -> list[str]:
    """Run `argv` so that permission bits bind it, also when the tests run as root.

    Root ignores them through CAP_DAC_OVERRIDE; dropping that capability (not switching to
    another user, who may not be able to read a checkout under a private home) makes a
    read-only folder read-only for it.
    """
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory read-only for the promote")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *argv]


def test_7_local_problems_are_named_as_local_not_as_the_network(
    gitops: GitOpsRepo, registry: RegistryHelper, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register()
    v2 = registry.register()
    # A read-only clone.
    place = Path(tempfile.mkdtemp(prefix="mlops-readonly-"))
    try:
        place.chmod(0o755)
        clone = place / "clone"
        git(place, "clone", "-q", str(gitops.remote), str(clone))
        for path in [clone, *clone.rglob("*")]:
            if not path.is_symlink():
                # read-only for everyone, readable (and executable where it was)
                path.chmod(path.stat().st_mode & ~0o222 | (0o555 if path.is_dir() else 0o444))
        refs = gitops.refs()
        env = {
            **os.environ,
            "HOME": str(place),
            "MLOPS_REPO": str(clone),
        }
        argv = [sys.executable, "-m", "mlops", "promote", "--env", "dev", "--model", MODEL, "--version", v2]
        command = _honouring_permissions(argv)
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "is not writable by this user" in proc.stderr and "network" not in proc.stderr, proc.stderr
        assert gitops.refs() == refs
    finally:
        for path in [place, *place.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(place)

    clone = gitops.clone("local-problems")
    for args, message in (
        (("--version", v2, "--branch", "main..x"), "--branch 'main..x' is not a valid git branch name"),
        (("--version", v2, "--branch", "main.lock"), "--branch 'main.lock' is not a valid git branch name"),
        (("--version", "4294967296"), "is larger than any MLflow model version can be (at most 2147483647)"),
    ):
        rc, _, err = cli(clone, "promote", "--env", "dev", "--model", MODEL, *args, capsys=capsys)
        assert rc == 2 and message in err, err
        assert "network" not in err and "unreachable" not in err and "registry at" not in err, err
