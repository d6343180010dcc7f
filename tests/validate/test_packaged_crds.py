"""The CRD schemas packaged with the CLI: consistent with their lock, reproducible from upstream."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlops import cli
from mlops.conventions.paths import PACKAGED_CRDS_DIR, default_crds_dir
from mlops.validate.schema_checks import packaged_crds

BUDGET_BYTES = 5 * 1024 * 1024


def _upstream_dir(repo_root: Path) -> Path | None:
    """A folder of upstream CRDs: $MLOPS_CRDS_DIR when it is one, else ../shared/crds (as in CI)."""
    for candidate in (os.environ.get("MLOPS_CRDS_DIR"), repo_root.parent / "shared" / "crds"):
        if candidate and (Path(candidate) / packaged_crds.SOURCES[0].folder).is_dir():
            return Path(candidate)
    return None


def _count(node: object, key: str) -> int:
    if isinstance(node, dict):
        return (key in node) + sum(_count(v, key) for v in node.values())
    if isinstance(node, list):
        return sum(_count(v, key) for v in node)
    return 0


def test_validate_uses_the_packaged_schemas_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_CRDS_DIR", raising=False)
    assert default_crds_dir() == PACKAGED_CRDS_DIR
    monkeypatch.setenv("MLOPS_CRDS_DIR", "/somewhere/else")
    assert default_crds_dir() == Path("/somewhere/else")


def test_packaged_schemas_match_their_lock_and_fit_the_budget() -> None:
    assert packaged_crds.lock_problems(PACKAGED_CRDS_DIR) == []
    size = sum(p.stat().st_size for p in PACKAGED_CRDS_DIR.rglob("*") if p.is_file())
    assert size <= BUDGET_BYTES, f"packaged CRD schemas take {size / 1e6:.1f} MB, over the 5 MB budget"


def test_a_hand_edited_schema_is_named(tmp_path: Path) -> None:
    copy = tmp_path / "crd_schemas"
    shutil.copytree(PACKAGED_CRDS_DIR, copy)
    edited = copy / "keda" / "keda.sh_scaledobjects.json"
    edited.write_text(edited.read_text().replace('"minimum":', '"maximum":', 1))
    (copy / "keda" / "extra.json").write_text("[]\n")
    assert packaged_crds.lock_problems(copy) == [
        f"{edited}: sha256 differs from the lock: edited by hand? run `mlops crds refresh`",
        f"{copy / 'keda' / 'extra.json'}: not in the lock",
    ]


def test_refresh_rebuilds_the_packaged_files_from_upstream_yaml(tmp_path: Path) -> None:
    """Always runs: upstream-shaped YAML (the packaged CRDs with documentation put back) compacts
    to the committed files byte for byte, without descriptions and with every CEL rule."""
    for source in packaged_crds.SOURCES:
        (tmp_path / source.folder).mkdir()
        for file in source.files:
            crds = json.loads((PACKAGED_CRDS_DIR / packaged_crds.packaged_name(source, file)).read_text())
            for crd in crds:
                old = {"name": "v0old", "served": False, "schema": {"openAPIV3Schema": {}}}
                crd["spec"]["versions"].append(old)
                for version in crd["spec"]["versions"]:
                    schema = version["schema"]["openAPIV3Schema"]
                    schema["description"] = "upstream documentation, dropped"
                    field = {"type": "string", "description": "documentation of a field named description"}
                    schema.setdefault("properties", {})["description"] = field
            text = yaml.dump_all(crds, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)
            (tmp_path / source.folder / file).write_text(text)
    bundle = packaged_crds.build(tmp_path)
    committed = {str(p.relative_to(PACKAGED_CRDS_DIR)) for p in PACKAGED_CRDS_DIR.rglob("*.json")}
    assert set(bundle.files) == committed
    for name, content in bundle.files.items():
        rebuilt = json.loads(content)
        original = json.loads((PACKAGED_CRDS_DIR / name).read_text())
        for crd_rebuilt, crd_original in zip(rebuilt, original, strict=True):
            versions, originals = crd_rebuilt["spec"]["versions"], crd_original["spec"]["versions"]
            assert [v["name"] for v in versions] == [v["name"] for v in originals]
            for rebuilt_version, original_version in zip(versions, originals, strict=True):
                schema = rebuilt_version["schema"]["openAPIV3Schema"]
                assert "description" not in schema
                # A property named `description` is a field, not documentation: it stays.
                assert schema["properties"].pop("description") == {"type": "string"}
                assert schema == original_version["schema"]["openAPIV3Schema"]
    rules = sum(_count(json.loads(c), "x-kubernetes-validations") for c in bundle.files.values())
    assert rules > 50, "the CEL rules of Karpenter, Argo CD and others must survive compaction"


def test_lock_matches_the_upstream_crds(repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Where upstream CRDs are at hand (CI keeps them in ../shared/crds), the refresh reproduces
    every packaged file and the lock's sha256 values. The test above covers a machine without them."""
    upstream = _upstream_dir(repo_root)
    if upstream is None:
        pytest.skip("no upstream CRD folder ($MLOPS_CRDS_DIR or ../shared/crds): packaged data checked above")
    code = cli.main(["--repo", str(repo_root), "crds", "refresh", "--upstream", str(upstream), "--check"])
    out = capsys.readouterr().out
    assert code == 0, out
    # As many as the lock lists: adding a CRD to the packaged set needs no edit here.
    lock = json.loads((PACKAGED_CRDS_DIR / packaged_crds.LOCK_NAME).read_text())
    packaged = {entry["packaged"] for entry in lock["files"]}
    assert f"{len(packaged)} packaged CRD files match {upstream.resolve()}" in out


def test_refresh_from_an_incomplete_folder_names_the_file_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    for folder in ("overlays", "apps"):
        (repo / folder).mkdir(parents=True)
    schema_dir = repo / "scripts" / "mlops" / "crd_schemas"
    shutil.copytree(PACKAGED_CRDS_DIR, schema_dir)
    before = {p: p.read_bytes() for p in schema_dir.rglob("*") if p.is_file()}
    upstream = tmp_path / "upstream"
    (upstream / "argo-cd-v3.5.1").mkdir(parents=True)
    code = cli.main(["--repo", str(repo), "crds", "refresh", "--upstream", str(upstream)])
    err = capsys.readouterr().err
    assert code == 2
    missing = upstream / "argo-cd-v3.5.1" / "application-crd.yaml"
    url = "https://raw.githubusercontent.com/argoproj/argo-cd/v3.5.1/manifests/crds/application-crd.yaml"
    assert f"error: {missing} is missing: put {url} there" in err
    assert {p: p.read_bytes() for p in schema_dir.rglob("*") if p.is_file()} == before


def test_refresh_needs_a_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crds", "refresh"]) == 2
    assert "pass --upstream DIR" in capsys.readouterr().err


def test_the_cli_validates_without_torch_or_the_serving_stack(repo_root: Path) -> None:
    """`pip install .` leaves out the train and serve extras: the CLI must not import them."""
    blocked = ["torch", "transformers", "fastapi", "uvicorn", "openai", "gateway", "trainer"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "from mlops.cli import main\n"
        "sys.exit(main(['validate', 'dev']))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_CRDS_DIR", "MLOPS_REPO")}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 problems in" in proc.stdout
