"""`mlops registry sync-alias` against a real MLflow server: the alias follows the version file."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.cli import main
from promote_support import MODEL, REPO_ROOT, RegistryHelper

VERSION_FILE = REPO_ROOT / "overlays" / "prod" / "models" / MODEL / "model-version.yaml"


def _version_file(tmp_path: Path, version: str) -> Path:
    """The prod version file as git has it, naming `version`."""
    text = VERSION_FILE.read_text()
    current = 'version: "1"'
    assert current in text
    path = tmp_path / "model-version.yaml"
    path.write_text(text.replace(current, f'version: "{version}"'))
    return path


def _mounted(tmp_path: Path, version: str) -> Path:
    """The ConfigMap as the hook Job sees it: one file per key."""
    folder = tmp_path / "mounted"
    folder.mkdir()
    (folder / "model").write_text(MODEL)
    (folder / "version").write_text(version)
    (folder / "weightsUri").write_text("s3://mlops-prod-mlflow-artifacts/1/x/artifacts/model")
    return folder


def test_sets_the_alias_then_does_nothing(
    registry: RegistryHelper, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = registry.register()
    second = registry.register()
    registry.client.set_registered_model_alias(MODEL, "prod", first)
    path = _version_file(tmp_path, second)

    assert main(["registry", "sync-alias", "--env", "prod", "--version-file", str(path)]) == 0
    assert registry.alias("prod") == second
    assert f"-> version {second} (was {first})" in capsys.readouterr().out

    before = registry.snapshot()
    assert main(["registry", "sync-alias", "--env", "prod", "--version-file", str(path)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert registry.snapshot() == before


def test_mounted_configmap_of_a_canary_moves_only_the_canary_alias(
    registry: RegistryHelper, tmp_path: Path
) -> None:
    stable = registry.register()
    canary = registry.register()
    registry.client.set_registered_model_alias(MODEL, "prod", stable)
    folder = _mounted(tmp_path, canary)

    assert main(["registry", "sync-alias", "--env=prod", f"--version-file={folder}", "--canary"]) == 0
    assert registry.alias("prod-canary") == canary
    assert registry.alias("prod") == stable


def test_model_and_version_arguments(registry: RegistryHelper) -> None:
    version = registry.register()
    assert main(["registry", "sync-alias", "--env", "dev", "--model", MODEL, "--version", version]) == 0
    assert registry.alias("dev") == version


def test_unknown_version_exits_2_and_changes_no_alias(
    registry: RegistryHelper, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = registry.register()
    registry.client.set_registered_model_alias(MODEL, "prod", version)
    before = registry.snapshot()
    path = _version_file(tmp_path, "99")

    assert main(["registry", "sync-alias", "--env", "prod", "--version-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert "version 99 of registered model 'support-chat' does not exist" in err
    assert f"versions: {version}" in err
    assert registry.snapshot() == before
    assert registry.alias("prod") == version


def test_bad_input_is_refused_before_the_registry(
    registry: RegistryHelper, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = registry.snapshot()
    assert main(["registry", "sync-alias", "--env", "staging", "--model", MODEL, "--version", "1"]) == 2
    assert "unknown environment 'staging'" in capsys.readouterr().err
    assert main(["registry", "sync-alias", "--env", "dev", "--version-file", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["registry", "sync-alias", "--env", "dev", "--model", MODEL]) == 2
    assert "--version-file PATH, or --model M --version V" in capsys.readouterr().err
    assert registry.snapshot() == before
