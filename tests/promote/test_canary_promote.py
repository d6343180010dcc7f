"""Promote, rollback, status and diff of a canary: folder `<model>-canary/`, MLflow alias `<env>-canary`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlops.conventions.deployment import Deployment
from promote_support import MODEL, GitOpsRepo, RegistryHelper, git
from support.canary import add_canary
from test_promote import assert_valid, file_at, run_cli, seed_validation, trailers  # noqa: F401

CANARY = f"{MODEL}-canary"
DEV_STABLE = Deployment("dev", MODEL).version_file
DEV_CANARY = Deployment.from_folder("dev", CANARY).version_file
PROD_STABLE = Deployment("prod", MODEL).version_file
PROD_CANARY = Deployment.from_folder("prod", CANARY).version_file


def _add_canaries(gitops: GitOpsRepo, clone: Path, uri: str) -> None:
    """The pull request that adds a canary (at the stable's version) to dev and prod, merged."""
    for env in ("dev", "prod"):
        paths = add_canary(clone, env, "1", uri.replace("-dev-", f"-{env}-"), weight=10)
        git(clone, "add", *paths)
    git(clone, "commit", "-q", "-m", "Add support-chat canaries at 10%")
    git(clone, "push", "-q", "origin", "main")


def test_promote_to_a_missing_canary_names_the_folder_to_add(
    clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = git(clone, "rev-parse", "HEAD")
    rc, _, err = run_cli(clone, "promote", "--env", "prod", "--model", MODEL, "--version", "2", "--canary",
                         capsys=capsys)  # fmt: skip
    assert rc == 2
    assert (
        f"error: no canary of model '{MODEL}' in prod: {PROD_CANARY} does not exist on origin/main "
        f"(deployments in prod there: {MODEL}): add the canary folder first (docs/adding-a-model.md, Canary)"
    ) in err
    assert git(clone, "rev-parse", "HEAD") == head


@pytest.mark.slow
def test_canary_promote_rollback_status_and_diff(
    gitops: GitOpsRepo,
    clone: Path,
    registry: RegistryHelper,
    assert_valid,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.register()
    v2, v3 = registry.register(), registry.register()
    _add_canaries(gitops, clone, file_at(clone, "HEAD", DEV_STABLE).weights_uri)
    stable_before = file_at(gitops.remote, "main", DEV_STABLE)

    def ok(*args: str) -> str:
        rc, out, err = run_cli(clone, *args, capsys=capsys)
        assert rc == 0, err
        return out

    out = ok("promote", "--env", "dev", "--model", MODEL, "--version", v2, "--canary", "--workflow", "wf-1")
    assert f"promoted {MODEL} 1 -> {v2} in dev canary" in out
    # Only the canary's folder changed (its first promote also leaves bootstrap mode, in its
    # kustomization.yaml); the stable deployment and its alias are untouched.
    assert git(clone, "diff", "--name-only", "HEAD~1", "HEAD").split() == [
        DEV_CANARY.replace("model-version.yaml", "kustomization.yaml"),
        DEV_CANARY,
    ]
    assert file_at(gitops.remote, "main", DEV_STABLE) == stable_before
    canary = file_at(gitops.remote, "main", DEV_CANARY)
    assert (canary.model, canary.version, canary.weights_uri) == (MODEL, v2, registry.weights_uri(v2))
    assert (
        git(clone, "log", "-1", "--format=%s").strip()
        == f"Promote {MODEL} to version {v2} in dev canary (was 1)"
    )
    assert trailers(clone, "HEAD") == {
        "Model": MODEL, "Version": v2, "Env": "dev", "MLflow-Run": canary.run_id, "Workflow": "wf-1",
        "Previous-Version": "1", "Promoted-By": "person", "Deployment": CANARY,
    }  # fmt: skip
    assert (registry.alias("dev-canary"), registry.alias("dev")) == (v2, None)
    assert_valid(clone, "dev")

    # The same promote again: no commit, the canary alias re-synced.
    head = git(gitops.remote, "rev-parse", "main")
    out = ok("promote", "--env", "dev", "--model", MODEL, "--version", v2, "--canary")
    assert f"{MODEL} is already at version {v2} in dev canary" in out
    assert git(gitops.remote, "rev-parse", "main") == head

    # status: one row per deployment, each with its own alias.
    rows = {(r["env"], r["deployment"]): r for r in json.loads(ok("status", "--json"))}
    assert set(rows) == {("dev", MODEL), ("dev", CANARY), ("prod", MODEL), ("prod", CANARY)}
    dev_canary, dev_stable = rows[("dev", CANARY)], rows[("dev", MODEL)]
    assert (dev_canary["model"], dev_canary["alias"], dev_canary["git_version"], dev_canary["in_sync"]) == (
        MODEL, "dev-canary", v2, True,
    )  # fmt: skip
    stable_row = (
        dev_stable["model"],
        dev_stable["alias"],
        dev_stable["git_version"],
        dev_stable["alias_version"],
    )
    assert stable_row == (MODEL, "dev", "1", "none")
    table = ok("status", "--env", "dev").splitlines()
    assert table[0].split()[:4] == ["ENV", "DEPLOYMENT", "GIT", "ALIAS"]
    assert [line.split()[:4] for line in table[1:]] == [["dev", MODEL, "1", "none"], ["dev", CANARY, v2, v2]]

    # diff names the canary's version change apart from the stable's.
    out = ok("diff", "--base", "HEAD~1")
    assert f"- dev `{CANARY}`: 1 → {v2}" in out and f"- dev `{MODEL}`:" not in out
    assert f"#### dev · `overlays/dev/models/{CANARY}` · Deployment" in out

    # Rollback of the canary: back to 1, v2 held back there only, canary alias follows.
    ok("rollback", "--env", "dev", "--model", MODEL, "--canary")
    canary = file_at(gitops.remote, "main", DEV_CANARY)
    assert (canary.version, canary.held_back) == ("1", [v2])
    assert trailers(gitops.remote, "main")["Deployment"] == CANARY
    assert file_at(gitops.remote, "main", DEV_STABLE) == stable_before
    assert (registry.alias("dev-canary"), registry.alias("dev")) == ("1", None)
    rc, _, err = run_cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v2, "--canary",
                         "--automated", capsys=capsys)  # fmt: skip
    assert rc == 2 and f"version {v2} of '{MODEL}' is held back in dev canary" in err
    assert f"--model {MODEL} --canary --version {v2}" in err
    assert_valid(clone, "dev")

    # prod: the canary's promote goes through its own branch, changing only the canary's file.
    main_before = git(gitops.remote, "rev-parse", "main")
    out = ok("promote", "--env", "prod", "--model", MODEL, "--version", v3, "--canary")
    branch = f"promote/{CANARY}-{v3}-prod"
    assert f"pushed branch {branch}" in out
    assert git(gitops.remote, "rev-parse", "main") == main_before
    assert git(gitops.remote, "diff", "--name-only", "main", branch).split() == [
        PROD_CANARY.replace("model-version.yaml", "kustomization.yaml"),
        PROD_CANARY,
    ]
    assert file_at(gitops.remote, branch, PROD_CANARY).version == v3
    assert registry.alias("prod-canary") is None  # moves when the merged promote is rerun on main
