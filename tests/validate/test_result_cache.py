"""Kept check results: a new version of anything that decides a result starts afresh."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.validate.runner.result_cache import SchemaResultCache
from mlops.validate.schema_checks import cel, deciders
from mlops.validate.schema_checks.schemas import KUBERNETES_VERSION, SchemaResult

DECIDING = deciders.SCHEMA_DISTRIBUTIONS + deciders.CEL_DISTRIBUTIONS


@pytest.fixture
def cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLOPS_BUILD_CACHE", raising=False)
    return tmp_path / "cache"


def _upgrade(monkeypatch: pytest.MonkeyPatch, distribution: str) -> None:
    """Make the version lookup `deciders` uses report a new release of `distribution`."""
    real = deciders.version
    monkeypatch.setattr(deciders, "version", lambda name: "999.0" if name == distribution else real(name))


def test_the_schema_data_and_its_resolver_decide_results() -> None:
    # The core schemas come from kubernetes-validate's package data, their $refs through referencing.
    assert {"kubernetes-validate", "referencing", "jsonschema", "cel-python"} <= set(DECIDING)


@pytest.mark.parametrize("distribution", DECIDING)
def test_a_kept_result_is_not_reused_after_a_deciding_distribution_changes(
    cache_dir: Path, crds_dir: Path, monkeypatch: pytest.MonkeyPatch, distribution: str
) -> None:
    key = SchemaResultCache.key("Deployment/web")
    kept = SchemaResultCache(crds_dir, KUBERNETES_VERSION)
    kept.put(key, SchemaResult(errors=[("spec.replicas", "'two' is not of type 'integer'")]))
    kept.save()
    assert SchemaResultCache(crds_dir, KUBERNETES_VERSION).get(key) is not None  # same versions: reused

    _upgrade(monkeypatch, distribution)
    after = SchemaResultCache(crds_dir, KUBERNETES_VERSION)
    assert after.get(key) is None
    assert after.path != kept.path


@pytest.mark.parametrize("distribution", deciders.CEL_DISTRIBUTIONS)
def test_kept_cel_outcomes_and_parses_change_file_with_the_cel_engine(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, distribution: str
) -> None:
    before = (cel._ResultCache().path, cel._AstCache().path)
    _upgrade(monkeypatch, distribution)
    after = (cel._ResultCache().path, cel._AstCache().path)
    assert after[0] != before[0] and after[1] != before[1]
