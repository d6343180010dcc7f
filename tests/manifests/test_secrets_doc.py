"""docs/first-apply.md's secrets table says what every ExternalSecret reads, so it cannot drift."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ENVS = ("dev", "prod")


def _table(repo_root: Path) -> dict[str, list[str]]:
    text = (repo_root / "docs/first-apply.md").read_text()
    block = text.split("<!-- secrets:table -->\n", 1)[1].split("<!-- /secrets:table -->", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()[2:]]
    return {row[0].strip("`"): row for row in rows}


def _external_secrets(rendered: Any, repo_root: Path, env: str) -> list[dict[str, Any]]:
    found = [
        doc
        for path, docs in rendered.by_path.items()
        if f"/{env}/" in f"/{path}/"
        for doc in docs
        if doc.get("kind") == "ExternalSecret"
    ]
    # kube-prometheus-stack renders its ExternalSecrets from the values (not built offline)
    values = yaml.safe_load(
        (repo_root / f"apps/upstream/kube-prometheus-stack/values-{env}.yaml").read_text()
    )
    for doc in values.get("extraManifests") or []:
        if doc.get("kind") == "ExternalSecret":
            found.append({**doc, "metadata": {**doc["metadata"], "namespace": "monitoring"}})
    return found


def _reads(secret: dict[str, Any], env: str) -> list[tuple[str, str]]:
    """(secret name with <env>, how it is read) for each remote secret an ExternalSecret reads."""
    spec = secret["spec"]
    reads = []
    for item in spec.get("data") or []:
        ref = item["remoteRef"]
        how = f"JSON property `{ref['property']}`" if ref.get("property") else "whole value"
        reads.append((ref["key"], how))
    for item in spec.get("dataFrom") or []:
        reads.append((item["extract"]["key"], "JSON object (`dataFrom.extract`)"))
    return [(re.sub(f"^mlops/{env}/", "mlops/<env>/", key), how) for key, how in reads]


def _how(hows: set[str]) -> str:
    """The table's "how it is read" cell for one secret: several JSON properties share one row."""
    properties = sorted(h.removeprefix("JSON property ") for h in hows if h.startswith("JSON property "))
    if len(properties) > 1 and len(properties) == len(hows):
        return "JSON properties " + ", ".join(properties)
    assert len(hows) == 1, f"one secret read in several ways: {sorted(hows)}"
    return next(iter(hows))


@pytest.mark.parametrize("env", ENVS)
def test_every_external_secret_is_in_the_first_apply_table(rendered, repo_root, env):
    table = _table(repo_root)
    secrets = _external_secrets(rendered, repo_root, env)
    read = {key for secret in secrets for key, _ in _reads(secret, env)}
    assert set(table) == read, f"rows nobody reads: {set(table) - read}; unlisted: {read - set(table)}"
    hows: dict[str, set[str]] = {}
    for secret in secrets:
        reader = f"`{secret['metadata']['namespace']}/{secret['metadata']['name']}`"
        for key, how in _reads(secret, env):
            hows.setdefault(key, set()).add(how)
            assert reader in table[key][1], f"{key}: the table does not name its reader {reader}"
    for key, read_as in hows.items():
        assert table[key][2] == _how(read_as), (
            f"{key}: the table says {table[key][2]!r}, it is read as {_how(read_as)!r}"
        )


def test_the_hand_made_count_is_the_tables(rendered, repo_root):
    hand_made = [row for row in _table(repo_root).values() if "written by terraform" not in row[3]]
    words = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}
    text = (repo_root / "docs/first-apply.md").read_text()
    assert f"fill the {words[len(hand_made)]} hand-made secrets" in text


def test_terraform_readme_fills_every_hand_made_secret_or_says_when(repo_root):
    # An SRE follows terraform/README.md step 3 to the letter: a secret it skips stays empty
    # and its ExternalSecret (and the pod that reads it) never starts.
    hand_made = [key for key, row in _table(repo_root).items() if "written by terraform" not in row[3]]
    readme = (repo_root / "terraform/README.md").read_text()
    step3 = readme.split("# 3. fill the hand-made secrets", 1)[1].split("# 4.", 1)[0]
    for key in hand_made:
        name = key.removeprefix("mlops/<env>/")
        filled = f"--secret-id mlops/dev/{name} " in step3
        deferred = re.search(rf"\b{re.escape(name)}\b", step3) is not None
        assert filled or deferred, f"terraform/README.md step 3 neither fills nor defers {key}"
    row = next(line for line in readme.splitlines() if line.startswith("| `modules/workload-roles` |"))
    listed = re.search(r"mlops/<env>/\{([^}]*)\}", row)
    assert listed, "the modules/workload-roles row lists no secrets"
    assert set(listed.group(1).split(",")) == {k.removeprefix("mlops/<env>/") for k in hand_made}
