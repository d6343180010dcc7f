"""Day-to-day journeys (issue 25): rollback without the registry, the emergency and review paths,
a canary rollback's traffic, the remote tip deciding, and racing promotes of one version."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from mlops.conventions.deployment import Deployment
from mlops.release.canary_analysis import analyze
from mlops.release.promotion import promote
from mlops.release.registry import Registry, point_alias
from promote_support import MODEL, GitOpsRepo, RegistryHelper, git
from support.canary import add_canary
from test_promote import file_at, run_cli, trailers

pytestmark = pytest.mark.slow

DEV_FILE = Deployment("dev", MODEL).version_file
PROD_FILE = Deployment("prod", MODEL).version_file
DEV_CANARY = Deployment("dev", MODEL, canary=True).version_file
DEV_ROUTES = Deployment("dev", MODEL).routes_file


def test_rollback_without_a_registry_commits_from_git_says_what_it_skipped_and_exits_0(
    gitops: GitOpsRepo,
    clone: Path,
    registry: RegistryHelper,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.register()
    v2, v3 = registry.register(), registry.register()
    for version in (v2, v3):
        assert run_cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", version,
                       capsys=capsys)[0] == 0  # fmt: skip
    deployed_v2 = file_at(gitops.remote, "main~1", DEV_FILE)

    # MLFLOW_TRACKING_URI unset: the revert is a git change, so it lands; the alias stays for the hook.
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    rc, out, err = run_cli(clone, "rollback", "--env", "dev", "--model", MODEL, capsys=capsys)

    assert rc == 0, err
    assert "warning: MLFLOW_TRACKING_URI is not set" in out
    assert f"rolled back {MODEL} {v3} -> {v2} in dev: commit" in out
    assert f"MLflow alias 'dev' of '{MODEL}' was not moved (no registry)" in out
    state = file_at(gitops.remote, "main", DEV_FILE)
    # version, weightsUri and mlflowRun all come from the state of the file that deployed v2
    assert (state.version, state.weights_uri, state.run_id, state.held_back) == (
        v2, deployed_v2.weights_uri, deployed_v2.run_id, [v3],
    )  # fmt: skip
    assert state.run_id == registry.client.get_model_version(MODEL, v2).run_id
    assert "Not checked against the MLflow registry: MLFLOW_TRACKING_URI is not set" in git(
        gitops.remote, "log", "-1", "--format=%B", "main"
    )
    assert registry.alias("dev") == v3  # untouched: the Sync hook moves it once Argo CD syncs

    assert state.weights_digest == deployed_v2.weights_digest == registry.weights_digest(v2)

    # The server down (nothing listens on port 9), one version further back: version 1 was only
    # named in bootstrap mode (weightsDigest none), and without the registry no digest is known
    # for it, so the rollback is refused and nothing is pushed.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    head = git(gitops.remote, "rev-parse", "main")
    rc, out, err = run_cli(clone, "rollback", "--env", "dev", "--model", MODEL, capsys=capsys)
    assert rc == 2
    assert "warning: MLflow registry at http://127.0.0.1:9 is unreachable" in out
    assert (
        f"version 1 of '{MODEL}' was never served (the folder named it in bootstrap mode, before its first "
        f"promote): the state of {DEV_FILE} that names it has data.weightsDigest 'none', which the weights "
        "fetch refuses, and the MLflow registry is unreachable"
    ) in err
    assert git(gitops.remote, "rev-parse", "main") == head


def test_prod_emergency_rollback_pushes_main_with_its_reason(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register()
    v2 = registry.register()
    assert (
        run_cli(clone, "promote", "--env", "prod", "--model", MODEL, "--version", v2, capsys=capsys)[0] == 0
    )
    git(gitops.remote, "update-ref", "refs/heads/main", f"refs/heads/promote/{MODEL}-{v2}-prod")  # merged

    rc, out, err = run_cli(clone, "rollback", "--env", "prod", "--model", MODEL,
                           "--emergency", "v2 answers 500 to every chat", capsys=capsys)  # fmt: skip

    assert rc == 0, err
    assert "pushed to origin/main (emergency: no pull request)" in out
    state = file_at(gitops.remote, "main", PROD_FILE)
    assert (state.version, state.held_back) == ("1", [v2])
    found = trailers(gitops.remote, "main")
    assert (found["Emergency"], found["Rolled-Back-From"]) == ("v2 answers 500 to every chat", v2)
    assert f"refs/heads/rollback/{MODEL}-1-prod" not in gitops.refs()
    assert registry.alias("prod") == "1"  # pushed to the followed branch: the alias follows at once


def test_dev_promote_with_propose_opens_a_pull_request_and_leaves_main(
    gitops: GitOpsRepo,
    clone: Path,
    registry: RegistryHelper,
    fake_github: list[tuple[str, str, dict[str, str], dict[str, object]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.register()
    v2 = registry.register()
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_test")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/gitops")
    main_before = git(gitops.remote, "rev-parse", "main")

    rc, out, err = run_cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v2,
                           "--propose", "feature/x", capsys=capsys)  # fmt: skip

    assert rc == 0, err
    assert git(gitops.remote, "rev-parse", "main") == main_before
    assert file_at(gitops.remote, "feature/x", DEV_FILE).version == v2
    # the first promote of the folder also leaves bootstrap mode (its kustomization.yaml)
    assert git(gitops.remote, "diff", "--name-only", "main", "feature/x").split() == [
        DEV_FILE.replace("model-version.yaml", "kustomization.yaml"),
        DEV_FILE,
    ]
    posts = [body for method, _, _, body in fake_github if method == "POST"]
    assert [(p["head"], p["base"]) for p in posts] == [("feature/x", "main")]
    assert "Sync hook" in str(posts[0]["body"]) and "PostSync" not in str(posts[0]["body"])
    assert f"pushed branch feature/x ({git(gitops.remote, 'rev-parse', 'feature/x')[:12]})" in out
    assert registry.alias("dev") is None  # moves when the merged change is synced


def test_canary_rollback_takes_the_canary_traffic_away_so_the_analysis_stops(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register()
    v2 = registry.register()
    paths = add_canary(clone, "dev", "1", file_at(clone, "HEAD", DEV_FILE).weights_uri, weight=10)
    git(clone, "add", *paths)
    git(clone, "commit", "-q", "-m", "Add a support-chat canary at 10%")
    git(clone, "push", "-q", "origin", "main")
    assert run_cli(clone, "promote", "--env", "dev", "--model", MODEL, "--version", v2, "--canary",
                   capsys=capsys)[0] == 0  # fmt: skip

    rc, out, err = run_cli(clone, "rollback", "--env", "dev", "--model", MODEL, "--canary", capsys=capsys)

    assert rc == 0, err
    assert sorted(git(gitops.remote, "diff", "--name-only", "main~1", "main").split()) == sorted(
        [DEV_CANARY, DEV_ROUTES]
    )
    routes = git(gitops.remote, "show", f"main:{DEV_ROUTES}")
    assert "weight: 0" in routes and "weight: 100" in routes and "weight: 10\n" not in routes
    canary = file_at(gitops.remote, "main", DEV_CANARY)
    assert (canary.version, canary.held_back) == ("1", [v2])
    # The analysis no longer judges it: weight 0 and the stable version mean "none", no Prometheus asked.
    decision = analyze(clone, env="dev", model=MODEL, prometheus_url="http://127.0.0.1:9", log=lambda _: None)
    assert decision.action == "none" and decision.weight == 0


def test_promote_and_rollback_decide_from_the_remote_tip_not_a_stale_checkout(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, capsys: pytest.CaptureFixture[str]
) -> None:
    other = gitops.clone("colleague")
    src = other / "overlays" / "dev" / "models" / MODEL
    dst = src.parent / "faq-bot"
    dst.mkdir()
    for file in src.iterdir():
        (dst / file.name).write_text(file.read_text().replace(MODEL, "faq-bot"))
    git(other, "add", str(dst))
    git(other, "commit", "-q", "-m", "Add faq-bot to dev")
    git(other, "push", "-q", "origin", "main")
    registry.reset("faq-bot")
    registry.register(model="faq-bot")
    v2 = registry.register(model="faq-bot")
    assert not (clone / "overlays" / "dev" / "models" / "faq-bot").exists()  # this checkout is stale

    rc, out, err = run_cli(clone, "promote", "--env", "dev", "--model", "faq-bot", "--version", v2,
                           capsys=capsys)  # fmt: skip

    assert rc == 0, err
    assert file_at(gitops.remote, "main", "overlays/dev/models/faq-bot/model-version.yaml").version == v2
    rc, out, err = run_cli(clone, "rollback", "--env", "dev", "--model", "faq-bot", capsys=capsys)
    assert rc == 0, err
    assert file_at(gitops.remote, "main", "overlays/dev/models/faq-bot/model-version.yaml").version == "1"


def test_racing_promotes_of_the_same_version_all_succeed(
    gitops: GitOpsRepo, registry: RegistryHelper
) -> None:
    registry.register()
    v2 = registry.register()
    clones = [gitops.clone(f"same-{i}") for i in range(6)]
    start = len(gitops.main_log())
    barrier = threading.Barrier(len(clones))
    errors: list[BaseException] = []

    def racer(repo: Path) -> None:
        try:
            barrier.wait()
            promote(repo, env="dev", model=MODEL, version=v2, log=lambda _: None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=racer, args=(c,)) for c in clones]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not errors, errors
    assert len(gitops.main_log()) == start + 1  # one commit; the others found it there
    assert registry.alias("dev") == v2


def test_racing_writes_of_one_alias_to_the_same_version_all_succeed(registry: RegistryHelper) -> None:
    """The registry's unique constraint on an alias row refuses the slower of two first writes:
    `UNIQUE constraint failed` must read as "already at that version", which is what was asked."""
    registry.register()
    version = registry.register()
    errors: list[BaseException] = []
    for _ in range(25):
        alias = f"race-{uuid.uuid4().hex[:8]}"
        barrier = threading.Barrier(8)

        def writer(alias: str = alias, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait()
                point_alias(Registry(registry.url), MODEL, alias, version)
            except BaseException as exc:  # noqa: BLE001 - reported by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=writer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert registry.alias(alias) == version
    assert not errors, errors


def test_status_without_a_tracking_uri_says_so_instead_of_unreachable(
    clone: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    rc, out, err = run_cli(clone, "status", "--env", "dev", capsys=capsys)

    assert rc == 0, err
    assert out.splitlines()[1].split()[:4] == ["dev", MODEL, "1", "not"]  # ALIAS: "not asked"
    assert "unreachable" not in out + err
    assert err.startswith("MLflow alias unknown: no MLFLOW_TRACKING_URI set: export it")
    assert "kubectl -n mlflow port-forward svc/mlflow 5000:5000" in err
