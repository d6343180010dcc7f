"""`mlops render` and the `mlops.rendering.render` API everyone else renders through."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlops import cli
from mlops.rendering.kustomize import KustomizeError
from mlops.rendering.render import CLUSTER_COMPONENT, render_env, render_kustomization, targets


def test_targets_are_overlay_leaves_and_the_cluster_root(repo_root: Path) -> None:
    found = {t.component: t.path for t in targets(repo_root, "prod")}
    assert found["models/support-chat"] == "overlays/prod/models/support-chat"
    assert found[CLUSTER_COMPONENT] == "clusters/prod"
    assert "models" not in found  # a folder of overlays is not itself rendered


def test_render_one_component(
    repo_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_REPO", str(repo_root))
    assert cli.main(["render", "dev", "models/support-chat"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Source: overlays/dev/models/support-chat\n")
    docs = [d for d in yaml.safe_load_all(out) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap"} <= kinds
    # The model version file, renamed by the overlay's name prefix.
    model_version = next(
        d for d in docs if d["kind"] == "ConfigMap" and "model-version" in d["metadata"]["name"]
    )
    assert model_version["data"]["model"] == "support-chat"
    assert {d["metadata"].get("namespace") for d in docs} == {"models"}


def test_render_env_returns_documents_per_kustomization(repo_root: Path) -> None:
    rendered = render_env(repo_root, "dev", component="models")
    assert [r.component for r in rendered] == ["models/support-chat"]
    assert rendered[0].env == "dev" and rendered[0].ok
    assert any(d["kind"] == "Deployment" for d in rendered[0].documents)


def test_unknown_component_is_a_clear_error(
    repo_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_REPO", str(repo_root))
    assert cli.main(["render", "dev", "mlfow"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no component 'mlfow' in dev: known are ")
    assert "mlflow" in err


def test_broken_kustomization_names_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "overlays" / "dev" / "broken"
    folder.mkdir(parents=True)
    (folder / "kustomization.yaml").write_text("resources: [../../../base/missing]\n")
    with pytest.raises(KustomizeError, match=r"^overlays/dev/broken: kustomize build failed: .*base/missing"):
        render_kustomization(tmp_path, "overlays/dev/broken")
