from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mlops.cli import main
from mlops.conventions.deployment import Deployment
from mlops.conventions.paths import default_crds_dir
from mlops.release.promotion import promote
from mlops.repository import bootstrap, model_version_file
from promote_support import ARTIFACTS_DESTINATION, MODEL, GitOpsRepo, RegistryHelper, digest_of_run, git
from support.servers import start_mlflow_server, start_postgres

pytestmark = pytest.mark.slow

DEV_FILE = Deployment("dev", MODEL).version_file
PROD_FILE = Deployment("prod", MODEL).version_file
# As shipped, support-chat is in bootstrap mode (mlops.repository.bootstrap): its first promote also
# removes the bootstrap component from the folder's kustomization.yaml.
DEV_KUSTOMIZATION = bootstrap.kustomization_file(Deployment("dev", MODEL))
PROD_KUSTOMIZATION = bootstrap.kustomization_file(Deployment("prod", MODEL))


def run_cli(repo: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    os.environ["MLOPS_REPO"] = str(repo)
    try:
        rc = main(list(args))
    finally:
        del os.environ["MLOPS_REPO"]
    out = capsys.readouterr()
    return rc, out.out, out.err


def trailers(repo: Path, rev: str) -> dict[str, str]:
    text = git(repo, "log", "-1", "--format=%B", rev)
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=text, capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split(": ", 1) for line in parsed.splitlines())


def file_at(repo: Path, rev: str, path: str) -> model_version_file.ModelVersionFile:
    return model_version_file.parse(git(repo, "show", f"{rev}:{path}"), path)


def _validate(repo: Path, env: str) -> tuple[int, set[str], str]:
    """Run `mlops validate ENV` through the CLI in a clone; return exit code, problem lines, output."""
    env_vars = {**os.environ, "MLOPS_CRDS_DIR": str(default_crds_dir(Path(__file__).resolve().parents[2]))}
    env_vars.pop("MLOPS_REPO", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "validate", env],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env_vars,
    )
    problems = {line for line in proc.stdout.splitlines() if ": " in line and "problems in" not in line}
    return proc.returncode, problems, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def seed_validation(
    seed_remote: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[int, set[str]]]:
    """`mlops validate` of each env on the unchanged copy: what a promote must not make worse."""
    repo = tmp_path_factory.mktemp("seed-validate") / "clone"
    git(repo.parent, "clone", "-q", str(seed_remote), str(repo))
    return {env: _validate(repo, env)[:2] for env in ("dev", "prod")}


@pytest.fixture
def assert_valid(seed_validation: dict[str, tuple[int, set[str]]]):  # type: ignore[no-untyped-def]
    """Check that `mlops validate ENV` passes on a repository after a promote or rollback.

    When this repository's own copy does not validate (someone's work in progress), the check
    is that the promote added no problem of its own.
    """

    def check(repo: Path, env: str) -> None:
        rc, problems, output = _validate(repo, env)
        seed_rc, seed_problems = seed_validation[env]
        assert problems <= seed_problems, output
        if seed_rc == 0:
            assert rc == 0, output

    return check


def test_promote_dev_edits_only_the_version_lines_commits_with_trailers_and_sets_alias(
    gitops: GitOpsRepo,
    clone: Path,
    registry: RegistryHelper,
    assert_valid,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.register()
    v2 = registry.register()
    before_text = (clone / DEV_FILE).read_text()

    rc, out, err = run_cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v2,
                           "--workflow", "train-abc12", capsys=capsys)  # fmt: skip

    assert rc == 0, err
    assert f"promoted {MODEL} 1 -> {v2} in dev" in out
    remote_head = git(gitops.remote, "rev-parse", "main").strip()
    assert git(clone, "rev-parse", "HEAD").strip() == remote_head  # local main fast-forwarded
    assert git(clone, "status", "--porcelain") == ""
    # Only that model's files changed: the version file, and (the first promote) the
    # kustomization, which leaves bootstrap mode and changes nothing else.
    changed = git(clone, "diff", "--name-only", "HEAD~1", "HEAD").split()
    assert changed == sorted([DEV_FILE, DEV_KUSTOMIZATION])
    kustomization = git(clone, "show", f"HEAD~1:{DEV_KUSTOMIZATION}")
    assert bootstrap.is_bootstrapping(kustomization)
    assert (clone / DEV_KUSTOMIZATION).read_text() == bootstrap.without_bootstrap(kustomization)
    assert not bootstrap.is_bootstrapping((clone / DEV_KUSTOMIZATION).read_text())
    assert f"{DEV_KUSTOMIZATION}: the first promote leaves bootstrap mode" in out
    after_text = (clone / DEV_FILE).read_text()
    old_lines, new_lines = before_text.splitlines(), after_text.splitlines()
    edited = ("  version:", "  weightsUri:", "  weightsDigest:", "  mlflowRun:")
    kept = [line for line in new_lines if not line.startswith(edited)]
    assert kept == [line for line in old_lines if not line.startswith(edited)]  # comments + order kept
    assert "# MLflow registered model version" in after_text
    state = model_version_file.parse(after_text, DEV_FILE)
    mv = registry.client.get_model_version(MODEL, v2)
    assert state.version == v2 and state.run_id == mv.run_id
    assert state.weights_uri == registry.weights_uri(v2)
    # The digest the trainer identity recorded on the version, now what the weights fetch checks.
    assert state.weights_digest == registry.weights_digest(v2) == mv.tags["weights_digest"]
    assert f"\n  weightsDigest: {state.weights_digest}\n" in after_text
    assert state.weights_uri.startswith("s3://mlops-dev-mlflow-artifacts/")
    subject = git(clone, "log", "-1", "--format=%s").strip()
    assert subject == f"Promote {MODEL} to version {v2} in dev (was 1)"
    assert trailers(clone, "HEAD") == {
        "Model": MODEL, "Version": v2, "Env": "dev", "MLflow-Run": mv.run_id, "Workflow": "train-abc12",
        "Previous-Version": "1", "Promoted-By": "person",
    }  # fmt: skip
    assert registry.alias("dev") == v2
    assert registry.alias("prod") is None
    assert_valid(clone, "dev")

    # Promoting the version that is already there: no commit, exit 0, a message.
    rc, out, err = run_cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v2, capsys=capsys)
    assert rc == 0, err
    assert f"{MODEL} is already at version {v2} in dev" in out
    assert git(gitops.remote, "rev-parse", "main").strip() == remote_head


def test_first_promote_of_a_fresh_mlflow_version_1_leaves_bootstrap_with_its_weights(
    gitops: GitOpsRepo,
    clone: Path,
    registry: RegistryHelper,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A fresh MLflow's first version is 1, the number the shipped file already names: it still commits.

    Before bootstrap mode, "already at version 1" left the shipped placeholder weightsUri in
    place and nothing was ever served from the real run.
    """
    v1 = registry.register()
    assert v1 == "1" and model_version_file.parse((clone / DEV_FILE).read_text(), DEV_FILE).version == "1"

    rc, out, err = run_cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v1, capsys=capsys)

    assert rc == 0, err
    assert "nothing to commit" not in out
    state = model_version_file.parse((clone / DEV_FILE).read_text(), DEV_FILE)
    assert state.version == "1" and state.weights_uri == registry.weights_uri(v1)
    # Bootstrap's `none` gives way to the trainer's digest in the same commit.
    assert state.weights_digest == registry.weights_digest(v1)
    assert not bootstrap.is_bootstrapping((clone / DEV_KUSTOMIZATION).read_text())
    assert registry.alias("dev") == v1
    # Out of bootstrap, the same promote again is a no-op, as before.
    head = git(gitops.remote, "rev-parse", "main")
    rc, out, err = run_cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v1, capsys=capsys)
    assert rc == 0, err
    assert "nothing to commit" in out and git(gitops.remote, "rev-parse", "main") == head


def test_ten_racing_promotes_from_ten_clones_all_land_once_in_linear_history(
    gitops: GitOpsRepo, registry: RegistryHelper, assert_valid
) -> None:
    versions = [registry.register() for _ in range(11)][1:]  # 2..11; the repo starts at "1"
    clones = [gitops.clone(f"racer-{i}") for i in range(10)]
    start = len(gitops.main_log())
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []

    def racer(repo: Path, version: str) -> None:
        try:
            barrier.wait()
            promote(
                repo, env="dev", model=MODEL, version=version, workflow=f"race-{version}", log=lambda _: None
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=racer, args=(c, v)) for c, v in zip(clones, versions, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    log = gitops.main_log()
    assert len(log) == start + 10
    assert git(gitops.remote, "rev-list", "--merges", "main") == ""  # linear
    landed = [trailers(gitops.remote, sha)["Version"] for sha in log[:10]]
    assert sorted(landed, key=int) == versions  # none lost, none duplicated
    # Each commit names the version it actually replaced: the chain is unbroken.
    previous = [trailers(gitops.remote, sha)["Previous-Version"] for sha in log[:10]]
    assert previous == landed[1:] + ["1"]
    final = file_at(gitops.remote, "main", DEV_FILE).version
    assert final == landed[0]
    assert registry.alias("dev") == final
    assert_valid(gitops.clone("after-race"), "dev")


def test_rollback_holds_back_the_version_and_automated_promote_respects_it(
    gitops: GitOpsRepo,
    clone: Path,
    registry: RegistryHelper,
    assert_valid,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.register()
    v2, v3, v4 = registry.register(), registry.register(), registry.register()

    def ok(*args: str) -> str:
        """Run a promote or rollback that must succeed; `mlops validate dev` must pass after it."""
        rc, out, err = run_cli(clone, *args, capsys=capsys)
        assert rc == 0, err
        assert_valid(clone, "dev")
        return out

    for v in (v2, v3):
        ok("promote", "--env", "dev", "--model", MODEL, "--version", v)

    ok("rollback", "--env", "dev", "--model", MODEL)
    state = file_at(gitops.remote, "main", DEV_FILE)
    assert (state.version, state.held_back) == (v2, [v3])
    subject = git(clone, "log", "-1", "--format=%s").strip()
    assert subject == f"Roll back {MODEL} to version {v2} in dev (was {v3})"
    assert trailers(clone, "HEAD")["Rolled-Back-From"] == v3
    assert registry.alias("dev") == v2

    # The git-bot (--automated) must not bring the held-back version back (argocd-image-updater #1249).
    head = git(gitops.remote, "rev-parse", "main")
    rc, out, err = run_cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v3, "--automated",
                           capsys=capsys)  # fmt: skip
    assert rc == 2 and f"version {v3} of '{MODEL}' is held back in dev" in err
    assert git(gitops.remote, "rev-parse", "main") == head and registry.alias("dev") == v2

    # A newer version may still be promoted automatically; the hold stays.
    ok("promote", "--env", "dev", "--model", MODEL, "--version", v4, "--automated")
    state = file_at(gitops.remote, "main", DEV_FILE)
    assert (state.version, state.held_back) == (v4, [v3])
    assert trailers(gitops.remote, "main")["Promoted-By"] == "automation"

    # A person promotes the held-back version explicitly: it lands and the hold is lifted.
    ok("promote", "--env", "dev", "--model", MODEL, "--version", v3)
    state = file_at(gitops.remote, "main", DEV_FILE)
    assert (state.version, state.held_back) == (v3, [])
    assert "heldBack" not in (clone / DEV_FILE).read_text()

    # rollback --to a version that ran before.
    ok("rollback", "--env", "dev", "--model", MODEL, "--to", v2)
    state = file_at(gitops.remote, "main", DEV_FILE)
    assert (state.version, state.held_back) == (v2, [v3])
    assert state.weights_digest == registry.weights_digest(v2)
    assert registry.alias("dev") == v2

    # Version 1 was only ever named in bootstrap mode (weightsDigest none): the rollback takes
    # the digest the trainer recorded in the registry.
    ok("rollback", "--env", "dev", "--model", MODEL, "--to", "1")
    state = file_at(gitops.remote, "main", DEV_FILE)
    assert (state.version, state.weights_digest) == ("1", registry.weights_digest("1"))
    body = git(clone, "log", "-1", "--format=%b")
    assert f"Weights digest: {state.weights_digest} (the trainer's tag in the MLflow registry" in body


def test_prod_promote_pushes_a_branch_opens_a_pr_with_the_rendered_diff_and_moves_alias_after_merge(
    gitops: GitOpsRepo,
    clone: Path,
    registry: RegistryHelper,
    fake_github: list,
    assert_valid,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.register()
    v2 = registry.register()
    main_before = git(gitops.remote, "rev-parse", "main")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_test_token")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/gitops")

    rc, out, err = run_cli(
        clone, "promote", "--env", "prod", "--model", MODEL, "--version", v2, capsys=capsys
    )

    assert rc == 0, err
    branch = f"promote/{MODEL}-{v2}-prod"
    assert git(gitops.remote, "rev-parse", "main") == main_before  # prod changes only through the PR
    assert file_at(gitops.remote, branch, PROD_FILE).version == v2
    assert git(gitops.remote, "diff", "--name-only", "main", branch).split() == sorted(
        [PROD_FILE, PROD_KUSTOMIZATION]
    )
    assert "pull request #17" in out
    assert registry.alias("prod") is None  # not live until merged
    [(method, path, headers, body)] = fake_github
    assert (method, path) == ("POST", "/repos/acme/gitops/pulls")
    assert headers["Authorization"] == "Bearer ghp_test_token"
    assert body["head"] == branch and body["base"] == "main"
    assert body["title"] == f"Promote {MODEL} to version {v2} in prod"
    text = str(body["body"])
    assert f"- prod `{MODEL}`: 1 → {v2}" in text
    assert (
        "```diff" in text
        and f"+    version: '{v2}'" in text
        or f'+    version: "{v2}"' in text
        or (f"+  version: '{v2}'" in text)
    )

    # Merge the PR (as GitHub would), then the same promote on main sets the prod alias.
    git(gitops.remote, "update-ref", "refs/heads/main", git(gitops.remote, "rev-parse", branch).strip())
    rc, out, err = run_cli(
        clone, "promote", "--env", "prod", "--model", MODEL, "--version", v2, capsys=capsys
    )
    assert rc == 0, err
    assert f"already at version {v2} in prod" in out
    assert registry.alias("prod") == v2


def test_prod_promote_without_token_prints_the_branch(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register()
    v2 = registry.register()
    rc, out, err = run_cli(
        clone, "promote", "--env", "prod", "--model", MODEL, "--version", v2, capsys=capsys
    )
    assert rc == 0, err
    assert f"pushed branch promote/{MODEL}-{v2}-prod" in out
    assert "GITHUB_TOKEN is not set" in out


def test_status_and_diff(
    gitops: GitOpsRepo,
    clone: Path,
    registry: RegistryHelper,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.register()
    v2 = registry.register()
    assert run_cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v2, capsys=capsys)[0] == 0

    rc, out, err = run_cli(clone, "status", "--json", capsys=capsys)
    assert rc == 0, err
    rows = {(r["env"], r["model"]): r for r in json.loads(out)}
    dev, prod = rows[("dev", MODEL)], rows[("prod", MODEL)]
    assert (dev["git_version"], dev["alias_version"], dev["in_sync"]) == (v2, v2, True)
    assert dev["subject"] == f"Promote {MODEL} to version {v2} in dev (was 1)"
    assert dev["commit"] == git(clone, "rev-parse", "--short=12", "HEAD").strip()
    assert (prod["git_version"], prod["alias_version"]) == ("1", "none")
    rc, out, _ = run_cli(clone, "status", "--env", "dev", capsys=capsys)
    assert out.splitlines()[1].split()[:4] == ["dev", MODEL, v2, v2]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    rc, out, err = run_cli(clone, "status", "--env", "dev", capsys=capsys)
    assert rc == 0 and out.splitlines()[1].split()[:4] == ["dev", MODEL, v2, "unreachable"]
    assert "MLflow alias unknown: MLflow registry at http://127.0.0.1:9 is unreachable" in err

    rc, out, err = run_cli(clone, "diff", "--base", "HEAD~1", capsys=capsys)
    assert rc == 0, err
    assert f"- dev `{MODEL}`: 1 → {v2}" in out
    assert "prod `" not in out  # prod did not change
    assert "#### dev · `overlays/dev/models/support-chat` · Deployment" in out

    rc, out, err = run_cli(clone, "diff", "--env", "dev", capsys=capsys)
    assert rc == 0 and "No rendered resource changes." in out

    # A kustomization that no longer builds is reported, not shown as every object removed.
    (clone / "overlays/dev/mlflow/kustomization.yaml").write_text("resources: [missing.yaml]\n")
    rc, out, err = run_cli(clone, "diff", "--env", "dev", capsys=capsys)
    assert rc == 0, err
    assert "**Render failures**" in out and "- new: overlays/dev/mlflow: kustomize build failed" in out
    assert "(removed)" not in out


def test_git_bot_entrypoint_promotes_with_automated(
    gitops: GitOpsRepo, registry: RegistryHelper, tmp_path: Path
) -> None:
    registry.register()
    v2 = registry.register()
    token = tmp_path / "token"
    token.write_text("ghp_not_used_for_a_file_remote\n")
    entrypoint = Path(__file__).resolve().parents[2] / "images" / "git-bot" / "entrypoint.sh"
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "GIT_REPO_URL": f"file://{gitops.remote}",
        "GIT_TOKEN_FILE": str(token),
        "WORKDIR": str(tmp_path / "bot-clone"),
    }
    (tmp_path / "home").mkdir()
    proc = subprocess.run(
        [str(entrypoint), "--env", "dev", "--model", MODEL, "--version", v2, "--workflow", "wf-42"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert trailers(gitops.remote, "main")["Workflow"] == "wf-42"
    assert trailers(gitops.remote, "main")["Promoted-By"] == "automation"
    assert git(gitops.remote, "log", "-1", "--format=%an <%ae>", "main").strip() == (
        "mlops-git-bot <mlops-git-bot@users.noreply.github.com>"
    )
    assert registry.alias("dev") == v2


def test_promote_and_rollback_on_postgres_backed_registry(
    gitops: GitOpsRepo, clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    with (
        start_postgres(tmp_path) as db,
        start_mlflow_server(db, tmp_path / "artifacts", serve_artifacts=True) as url,
    ):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", ARTIFACTS_DESTINATION)
        helper = RegistryHelper(url)
        helper.reset()
        helper.register()
        v2 = helper.register()
        assert (
            run_cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v2, capsys=capsys)[0]
            == 0
        )
        assert helper.alias("dev") == v2
        assert run_cli(clone, "rollback", "--env", "dev", "--model", MODEL, capsys=capsys)[0] == 0
        assert helper.alias("dev") == "1"
        state = file_at(gitops.remote, "main", DEV_FILE)
        assert (state.version, state.held_back) == ("1", [v2])
        assert file_at(gitops.remote, "main~1", DEV_FILE).weights_uri == helper.weights_uri(v2)


def test_promote_resolves_runs_uri_to_the_runs_artifact_location(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper
) -> None:
    registry.register()
    run = registry.client.create_run(registry.experiment_id)
    mv = registry.client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    registry.client.log_metric(run.info.run_id, "eval_perplexity", 9.0)
    for key, value in {"gate_metric": "eval_perplexity", "gate_threshold": "30.0", "gate_value": "9.000000",
                       "gate_passed": "true",
                       "weights_digest": digest_of_run(run.info.run_id)}.items():  # fmt: skip
        registry.client.set_model_version_tag(MODEL, mv.version, key, value)
    promote(clone, env="dev", model=MODEL, version=str(mv.version), log=lambda _: None)
    state = file_at(gitops.remote, "main", DEV_FILE)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    served_path = run.info.artifact_uri.removeprefix("mlflow-artifacts:/").lstrip("/")
    assert state.weights_uri == f"{ARTIFACTS_DESTINATION}/{served_path}/model"


def test_promote_resolves_a_logged_model_to_its_own_location(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper
) -> None:
    # MLflow 3 registers a logged model as `models:/<model id>`; its files lie under the logged
    # model's location, not under the run's `model/` (which holds the trainer's attempt folders).
    registry.register()
    run = registry.client.create_run(registry.experiment_id)
    logged = registry.client.create_logged_model(registry.experiment_id, source_run_id=run.info.run_id)
    mv = registry.client.create_model_version(
        MODEL, f"models:/{logged.model_id}", run_id=run.info.run_id, model_id=logged.model_id
    )
    registry.client.log_metric(run.info.run_id, "eval_perplexity", 9.0)
    for key, value in {"gate_metric": "eval_perplexity", "gate_threshold": "30.0", "gate_value": "9.000000",
                       "gate_passed": "true",
                       "weights_digest": digest_of_run(run.info.run_id)}.items():  # fmt: skip
        registry.client.set_model_version_tag(MODEL, mv.version, key, value)
    promote(clone, env="dev", model=MODEL, version=str(mv.version), log=lambda _: None)
    state = file_at(gitops.remote, "main", DEV_FILE)
    assert logged.artifact_location.startswith("mlflow-artifacts:/")
    served_path = logged.artifact_location.removeprefix("mlflow-artifacts:/").lstrip("/")
    assert state.weights_uri == f"{ARTIFACTS_DESTINATION}/{served_path}"
    assert f"/{run.info.run_id}/" not in state.weights_uri


def test_alias_failure_after_push_is_reported_and_a_rerun_repairs_it(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper
) -> None:
    from mlops.conventions.errors import MlopsError
    from mlops.release.registry import Registry, RegistryError

    class AliasDown(Registry):
        def set_alias(self, model: str, alias: str, version: str) -> None:
            raise RegistryError(
                f"MLflow registry at {self.uri} is unreachable (set alias): connection refused"
            )

    registry.register()
    v2 = registry.register()
    expected = (
        r"commit \w{12} is pushed to origin/main, but setting MLflow alias 'dev' failed: .*rerun the same"
    )
    with pytest.raises(MlopsError, match=expected):
        promote(clone, env="dev", model=MODEL, version=v2, registry=AliasDown(), log=lambda _: None)
    assert file_at(gitops.remote, "main", DEV_FILE).version == v2  # git has it: the push is the commit point
    assert registry.alias("dev") is None

    lines: list[str] = []
    outcome = promote(clone, env="dev", model=MODEL, version=v2, log=lines.append)
    assert outcome.commit is None and registry.alias("dev") == v2
    assert f"{MODEL} is already at version {v2} in dev (origin/main): nothing to commit" in lines


def test_prod_rollback_goes_through_a_branch_and_holds_the_version_back(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register()
    v2 = registry.register()
    assert (
        run_cli(clone, "promote", "--env", "prod", "--model", MODEL, "--version", v2, capsys=capsys)[0] == 0
    )
    git(gitops.remote, "update-ref", "refs/heads/main", f"refs/heads/promote/{MODEL}-{v2}-prod")  # merged
    main_before = git(gitops.remote, "rev-parse", "main")

    rc, out, err = run_cli(clone, "rollback", "--env", "prod", "--model", MODEL, capsys=capsys)

    assert rc == 0, err
    assert git(gitops.remote, "rev-parse", "main") == main_before
    branch = f"rollback/{MODEL}-1-prod"
    state = file_at(gitops.remote, branch, PROD_FILE)
    assert (state.version, state.held_back) == ("1", [v2])
    assert trailers(gitops.remote, branch)["Rolled-Back-From"] == v2


# (MLflow itself refuses a source with `..` segments: INVALID_PARAMETER_VALUE)
@pytest.mark.parametrize(
    "source", ["s3://attacker-bucket/model", "s3://mlops-dev-mlflow-artifacts-evil/model"]
)
def test_promote_refuses_weights_outside_the_registrys_artifact_store(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, source: str
) -> None:
    from mlops.release.registry import RegistryError

    run = registry.client.create_run(registry.experiment_id)
    registry.client.log_metric(run.info.run_id, "eval_perplexity", 9.0)
    gate = {
        "gate_metric": "eval_perplexity",
        "gate_threshold": "30.0",
        "gate_value": "9.000000",
        "gate_passed": "true",
        "weights_digest": digest_of_run(run.info.run_id),
    }
    mv = registry.client.create_model_version(MODEL, source, run_id=run.info.run_id, tags=gate)
    before, aliases = gitops.main_log(), registry.snapshot()
    with pytest.raises(RegistryError) as refused:
        promote(clone, env="dev", model=MODEL, version=str(mv.version), log=lambda _: None)
    assert str(refused.value) == (
        f"version {mv.version} of 'support-chat' has its weights at {source}, outside the registry's "
        "artifact store s3://mlops-dev-mlflow-artifacts: promote only versions whose weights the "
        "environment's MLflow stored (register the model through the trainer)"
    )
    assert (gitops.main_log(), registry.snapshot()) == (before, aliases)


@pytest.mark.parametrize("digest", [None, "sha256:" + "0" * 63, "SHA256:" + "0" * 64, "none"])
def test_promote_refuses_a_version_without_the_trainers_weights_digest(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, digest: str | None
) -> None:
    """Without the digest the weights fetch could verify nothing: nothing is committed, no alias moves."""
    from mlops.release.registry import RegistryError

    version = registry.register(weights_digest=digest)
    before, aliases = gitops.main_log(), registry.snapshot()
    with pytest.raises(RegistryError) as refused:
        promote(clone, env="dev", model=MODEL, version=version, log=lambda _: None)
    where = f"version {version} of 'support-chat' in the MLflow registry at {registry.url}"
    if digest is None:
        assert str(refused.value) == (
            f"{where} has no weights_digest tag: the model server could not verify its weights; register "
            "the model with the platform's trainer (python -m trainer.train), which records it"
        )
    else:
        assert str(refused.value) == (
            f"{where}: tag weights_digest={digest!r} is not sha256:<64 lowercase hex>: the trainer did not "
            "write it; register the model again with the platform's trainer"
        )
    assert (gitops.main_log(), registry.snapshot()) == (before, aliases)
