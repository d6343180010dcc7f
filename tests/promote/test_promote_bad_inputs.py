"""Each bad input gives a clear error and leaves the repository and the registry as they were."""

# ruff: noqa: E501 - the table of cases reads best with one case per line group

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mlops.cli import main
from mlops.conventions.deployment import Deployment
from mlops.repository import model_version_file
from promote_support import ARTIFACTS_DESTINATION, MODEL, GitOpsRepo, RegistryHelper, git

pytestmark = pytest.mark.slow

DEV_FILE = Deployment("dev", MODEL).version_file


@dataclass
class World:
    gitops: GitOpsRepo
    clone: Path
    registry: RegistryHelper
    monkeypatch: pytest.MonkeyPatch
    versions: dict[str, str] = field(default_factory=dict)

    def commit_dev_file(self, text: str, message: str = "Edit the dev version file by hand") -> None:
        """Commit and push a new dev version file (for malformed-file cases), as a person would."""
        (self.clone / DEV_FILE).write_text(text)
        git(self.clone, "commit", "-q", "-am", message)
        git(self.clone, "push", "-q", "origin", "main")


def _replace(world: World, old: str, new: str) -> None:
    text = (world.clone / DEV_FILE).read_text()
    assert old in text, old
    world.commit_dev_file(text.replace(old, new, 1))


@dataclass
class Case:
    id: str
    args: list[str]
    error: str  # a regular expression the one-line error must match
    setup: Callable[[World], None] | None = None


def _promote(version: str = "{pass}", env: str = "dev", model: str = MODEL, *extra: str) -> list[str]:
    return ["promote", "--env", env, "--model", model, "--version", version, *extra]


def _remove_remote_pushes(world: World) -> None:
    hook = world.gitops.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch: pushes to main need a review' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)


def _other_model_folder(world: World) -> None:
    src = world.clone / "overlays" / "dev" / "models" / MODEL
    dst = world.clone / "overlays" / "dev" / "models" / "other-chat"
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).write_text(f.read_text().replace(MODEL, "other-chat"))
    git(world.clone, "add", str(dst))
    git(world.clone, "commit", "-q", "-m", "Add other-chat (not registered in MLflow)")
    git(world.clone, "push", "-q", "origin", "main")


def _no_identity(world: World) -> None:
    for key in ("user.name", "user.email"):
        git(world.clone, "config", "--unset", key)
    git(world.clone, "config", "user.useConfigOnly", "true")
    world.monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    world.monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        world.monkeypatch.delenv(var, raising=False)


def _promote_then_rollback(world: World) -> None:
    assert main(_promote(world.versions["pass"])) == 0
    assert main(["rollback", "--env", "dev", "--model", MODEL]) == 0


CASES = [
    Case("unknown-env", _promote(env="staging"), r"unknown environment 'staging': use one of dev, prod"),
    Case("unknown-model", _promote(model="no-such-model"),
         r"unknown model 'no-such-model' in dev: overlays/dev/models/no-such-model/model-version.yaml does not "
         r"exist on origin/main \(deployments in dev there: support-chat\)"),
    Case("version-not-in-registry", _promote("99"),
         r"version 99 of registered model 'support-chat' does not exist in the MLflow registry .*\(versions: 1, 2, 3, 4, 5\)"),
    Case("version-failed-gate", _promote("{fail}"),
         r"version 3 of 'support-chat' did not pass its evaluation gate \(gate_passed='false', eval_perplexity 12.500000 "
         r"against threshold 30.0\)"),
    Case("version-never-evaluated", _promote("{nogate}"),
         r"version 4 of 'support-chat' has no gate_passed tag .*run the evaluation step"),
    Case("non-numeric-version", _promote("latest"), r"version 'latest' is not a registered model version"),
    Case("version-zero", _promote("0"), r"version '0' is not a registered model version"),
    Case("registered-model-missing", _promote("1", "dev", "other-chat"),
         r"registered model 'other-chat' does not exist in the MLflow registry", _other_model_folder),
    Case("version-file-bad-yaml", _promote(), r"overlays/dev/models/support-chat/model-version.yaml \(on origin/main\): not valid YAML at line 4: expected .*: fix the file",
         lambda w: w.commit_dev_file("apiVersion: v1\nkind: ConfigMap\ndata: {model: [support-chat\n")),
    Case("version-file-missing-weights", _promote(),
         r"model-version.yaml \(on origin/main\): ConfigMap model-version is missing data.weightsUri",
         lambda w: _replace(w, "  weightsUri:", "  weightsURI:")),
    Case("version-file-wrong-kind", _promote(),
         r"model-version.yaml \(on origin/main\): apiVersion/kind is 'v1'/'Secret', expected v1/ConfigMap",
         lambda w: _replace(w, "kind: ConfigMap", "kind: Secret")),
    Case("version-file-unquoted-version", _promote(),
         r"data.version is int 1; ConfigMap data values are strings: quote it",
         lambda w: _replace(w, 'version: "1"', "version: 1")),
    Case("version-file-other-model", _promote(),
         r"data.model is 'chat-support' but the folder is for model 'support-chat'",
         lambda w: _replace(w, "model: support-chat", "model: chat-support")),
    Case("version-file-wrong-name", _promote(), r"metadata.name is 'model-versions', expected 'model-version'",
         lambda w: _replace(w, "name: model-version", "name: model-versions")),
    Case("dirty-working-tree", _promote(),
         r"working tree of .* has uncommitted changes \(overlays/dev/models/support-chat/model-version.yaml\)",
         lambda w: (w.clone / DEV_FILE).write_text((w.clone / DEV_FILE).read_text() + "# local edit\n")),
    Case("staged-change", _promote(), r"has uncommitted changes \(README.md\)",
         lambda w: ((w.clone / "README.md").write_text("changed\n"), git(w.clone, "add", "README.md"))),
    Case("remote-path-missing", _promote(), r"cannot fetch main from remote 'origin' \(/nonexistent/gitops.git\)",
         lambda w: git(w.clone, "remote", "set-url", "origin", "/nonexistent/gitops.git")),
    Case("remote-url-unreachable", _promote(),
         r"cannot fetch main from remote 'origin' \(http://127.0.0.1:9/gitops.git\): .*check the network",
         lambda w: git(w.clone, "remote", "set-url", "origin", "http://127.0.0.1:9/gitops.git")),
    Case("no-such-remote", _promote("{pass}", "dev", MODEL, "--remote", "upstream"),
         r"has no git remote named 'upstream': add it or pass --remote"),
    Case("no-such-branch", _promote("{pass}", "dev", MODEL, "--branch", "release"),
         r"remote 'origin' has no branch 'release': pass --branch the branch Argo CD follows \(main\); "
         r"to put the change on a new branch for review, pass --propose release"),
    Case("push-refused-by-remote", _promote(), r"push of refs/heads/main to remote 'origin' was refused: .*"
         r"protected branch", _remove_remote_pushes),
    Case("no-commit-identity", _promote(), r"cannot commit in .*: fatal: no email was given and auto-detection is disabled: set the commit identity",
         _no_identity),
    Case("registry-unreachable", _promote(), r"MLflow registry at http://127.0.0.1:9 is unreachable",
         lambda w: w.monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")),
    Case("served-artifacts-without-destination", _promote(),
         r"the weights are at mlflow-artifacts:/.*/artifacts/model, a location only the MLflow server resolves: set MLFLOW_ARTIFACTS_DESTINATION",
         lambda w: w.monkeypatch.delenv("MLFLOW_ARTIFACTS_DESTINATION", raising=False)),
    Case("tracking-uri-unset", _promote(), r"MLFLOW_TRACKING_URI is not set",
         lambda w: w.monkeypatch.delenv("MLFLOW_TRACKING_URI")),
    Case("held-back-automated", _promote("{pass}", "dev", MODEL, "--automated"),
         r"version 2 of 'support-chat' is held back in dev .*automated promotes skip it", _promote_then_rollback),
    Case("prod-token-without-repository", _promote("{pass}", "prod"),
         r"GITHUB_TOKEN is set but the GitHub repository is unknown: .*set GITHUB_REPOSITORY=owner/name",
         lambda w: w.monkeypatch.setenv("GITHUB_TOKEN", "ghp_x")),
    Case("rollback-no-history", ["rollback", "--env", "dev", "--model", MODEL],
         r"no earlier version of 'support-chat' in dev: the history of .* only has version 1; nothing to roll back"),
    Case("rollback-to-never-deployed", ["rollback", "--env", "dev", "--model", MODEL, "--to", "{pass}"],
         r"version 2 of 'support-chat' was never deployed to dev \(versions in the history of .*: 1\)"),
    Case("rollback-to-current", ["rollback", "--env", "dev", "--model", MODEL, "--to", "1"],
         r"'support-chat' is already at version 1 in dev: nothing to roll back"),
    Case("rollback-to-not-a-version", ["rollback", "--env", "dev", "--model", MODEL, "--to", "v1"],
         r"--to version 'v1' is not a registered model version"),
    Case("rollback-unknown-env", ["rollback", "--env", "qa", "--model", MODEL], r"unknown environment 'qa'"),
    Case("rollback-unknown-model", ["rollback", "--env", "prod", "--model", "chat"], r"unknown model 'chat' in prod"),
    # issue 25: the paths a change takes are chosen on purpose; a wrong choice is refused, not guessed
    Case("propose-the-followed-branch", _promote("{pass}", "dev", MODEL, "--propose", "main"),
         r"--propose main is the branch Argo CD follows \(--branch\): a proposal needs its own branch"),
    Case("propose-an-existing-branch", _promote("{pass}", "dev", MODEL, "--propose", "feature/x"),
         r"branch feature/x already exists on remote 'origin' and does not propose version 2 .*never replaces one",
         lambda w: git(w.clone, "push", "-q", "origin", "HEAD:refs/heads/feature/x")),
    Case("propose-malformed", _promote("{pass}", "dev", MODEL, "--propose", "feature..x"),
         r"--propose 'feature\.\.x' is not a valid git branch name"),
    Case("emergency-reason-forges-trailer", ["rollback", "--env", "prod", "--model", MODEL, "--emergency", "down\nVersion: 9"],
         r"--emergency reason 'down\\nVersion: 9' contains control characters"),
    Case("rollback-registry-disagrees-with-git", ["rollback", "--env", "dev", "--model", MODEL],
         r"data.mlflowRun of version 2 is (deadbeef){4} in git, but the MLflow registry at .* says version 2 of "
         r"'support-chat' comes from run \w+: git and the registry disagree",
         lambda w: _promote_with_wrong_run_then_move_on(w)),
    Case("status-unknown-env", ["status", "--env", "staging"], r"unknown environment 'staging'"),
    # issue 15: hostile values are refused before the registry or git is touched
    Case("version-trailing-newline", _promote("{pass}\n"), r"version '2\\n' is not a registered model version"),
    Case("version-leading-space", _promote(" 2"), r"version ' 2' is not a registered model version"),
    Case("version-too-large", _promote("99999999999"),
         r"version '99999999999' is larger than any MLflow model version can be \(at most 2147483647\)"),
    Case("model-with-slash", _promote("{pass}", "dev", "../prod/models/support-chat"), r"--model '\.\./prod/models/support-chat' is not a model name"),
    Case("model-canary-suffix", _promote("{pass}", "dev", "support-chat-canary"), r"ends in '-canary', which names a canary deployment"),
    Case("env-with-newline", _promote("{pass}", "dev\n"), r"unknown environment 'dev\\n'"),
    Case("branch-malformed", _promote("{pass}", "dev", MODEL, "--branch", "ma..in"),
         r"--branch 'ma\.\.in' is not a valid git branch name"),
    Case("branch-option-like", _promote("{pass}", "dev", MODEL, "--branch=-f"), r"--branch '-f' is not a valid git branch name"),
    Case("remote-with-space", _promote("{pass}", "dev", MODEL, "--remote", "origin main"), r"--remote 'origin main' is not a git remote name"),
    Case("workflow-forges-trailer", _promote("{pass}", "dev", MODEL, "--workflow", "wf-1\nVersion: 99"),
         r"--workflow 'wf-1\\nVersion: 99' contains control characters \(\\n\): it must be one line"),
    Case("workflow-carriage-return", _promote("{pass}", "dev", MODEL, "--workflow", "wf\rPromoted-By: person"),
         r"--workflow .* contains control characters \(\\r\)"),
    Case("workflow-empty", _promote("{pass}", "dev", MODEL, "--workflow", " "), r"--workflow ' ' is empty"),
    Case("tracking-uri-without-scheme", _promote(), r"MLFLOW_TRACKING_URI 'localhost:5000' has no scheme MLflow knows",
         lambda w: w.monkeypatch.setenv("MLFLOW_TRACKING_URI", "localhost:5000")),
    Case("tracking-uri-host-only", _promote(), r"MLFLOW_TRACKING_URI 'mlflow.example' has no scheme MLflow knows \(none\)",
         lambda w: w.monkeypatch.setenv("MLFLOW_TRACKING_URI", "mlflow.example")),
    Case("rollback-to-held-back", ["rollback", "--env", "dev", "--model", MODEL, "--to", "{pass}"],
         r"version 2 of 'support-chat' is held back in dev .*a person promotes it", _promote_then_rollback),
    Case("rollback-all-earlier-held", ["rollback", "--env", "dev", "--model", MODEL],
         r"no earlier version of 'support-chat' in dev that is not held back", _promote_then_rollback),
    Case("sync-alias-model-newline", ["registry", "sync-alias", "--env", "dev", "--model", "support-chat\n", "--version", "1"],
         r"model 'support-chat\\n' is not a model name"),
    Case("sync-alias-version-newline", ["registry", "sync-alias", "--env", "dev", "--model", MODEL, "--version", "1\n"],
         r"version '1\\n' is not a registered model version"),
    Case("sync-alias-bad-alias", ["registry", "sync-alias", "--env", "dev", "--model", MODEL, "--version", "1", "--alias", "prod\nx"],
         r"parameter --alias='prod\\nx' does not match"),
    Case("diff-unknown-base", ["diff", "--base", "no-such-ref"], r"cannot export 'no-such-ref'"),
]  # fmt: skip


def _promote_with_wrong_run_then_move_on(world: World) -> None:
    """Version 2 deployed with a hand-edited mlflowRun the registry does not know, then version 5."""
    assert main(_promote(world.versions["pass"])) == 0
    path = world.clone / DEV_FILE
    text = path.read_text()
    run = model_version_file.parse(text, DEV_FILE).run_id
    assert run
    path.write_text(text.replace(run, "deadbeef" * 4))
    git(world.clone, "commit", "-q", "-am", "Hand edit: a wrong mlflowRun")
    git(world.clone, "push", "-q", "origin", "HEAD:main")
    assert main(_promote(world.versions["pass2"])) == 0


def _state(world: World) -> dict[str, object]:
    return {
        "head": git(world.clone, "rev-parse", "HEAD"),
        "branch": git(world.clone, "symbolic-ref", "HEAD"),
        "status": git(world.clone, "status", "--porcelain"),
        "remote_refs": world.gitops.refs(),
        "registry": world.registry.snapshot(),
        "other_aliases": [world.registry.alias(a) for a in ("dev", "prod", "candidate")],
    }


@pytest.fixture(scope="module")
def versions(mlflow_sqlite: str) -> tuple[RegistryHelper, dict[str, str]]:
    """Versions 1..5 of support-chat, registered once: no case may change them (each asserts so)."""
    helper = RegistryHelper(mlflow_sqlite)
    helper.reset()
    deployed = helper.register()  # the repository starts at version 1
    found = {"pass": helper.register(), "fail": helper.register("false"), "nogate": helper.register(None),
             "pass2": helper.register()}  # fmt: skip
    assert (deployed, found) == ("1", {"pass": "2", "fail": "3", "nogate": "4", "pass2": "5"})
    return helper, found


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_clear_error_and_changes_nothing(
    case: Case,
    gitops: GitOpsRepo,
    clone: Path,
    versions: tuple[RegistryHelper, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, world_versions = versions
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.url)
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", ARTIFACTS_DESTINATION)
    for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)
    world = World(
        gitops=gitops, clone=clone, registry=registry, monkeypatch=monkeypatch, versions=world_versions
    )
    monkeypatch.setenv("MLOPS_REPO", str(clone))
    if case.setup:
        case.setup(world)
    before = _state(world)

    args = [a.format(**world.versions) for a in case.args]
    capsys.readouterr()
    rc = main(args)
    out, err = capsys.readouterr()

    assert rc == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one clear line, no traceback
    assert re.search(case.error, err), err
    assert _state(world) == before


def test_there_are_at_least_twenty_bad_inputs() -> None:
    assert len({c.id for c in CASES}) >= 20
