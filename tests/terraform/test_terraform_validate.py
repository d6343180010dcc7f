"""`terraform validate` of the modules that need only the AWS provider, offline.

This workplace carries a local provider mirror (hashicorp/aws 5.100.0 under
/opt/tf-plugins, or $TF_PLUGIN_MIRROR). A throwaway root calls each of those modules with
root variables for every input -- unknown at validate time, so every type fits -- and one
`init -plugin-dir` + `validate` checks resource types, argument names, blocks and
references against the provider's schema. Modules that need providers or registry modules
the mirror lacks (network: the registry VPC module; mlflow-db: random; argocd-bootstrap:
helm and kubernetes) and the envs that compose them are not covered; terraform/README.md
says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tfrepo import MODULES, TERRAFORM, blocks

MIRROR = Path(os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
AWS_ONLY = {
    "eks": MODULES / "eks",
    "karpenter": MODULES / "karpenter",
    "data": MODULES / "data",
    "ecr": MODULES / "ecr",
    "pull_through_cache": MODULES / "pull-through-cache",
    "workload_roles": MODULES / "workload-roles",
    "pod_identity_role": MODULES / "pod-identity-role",
    "kms_key": MODULES / "kms-key",
    "ingress": MODULES / "ingress",
    "container_logs": MODULES / "container-logs",
    "state_bootstrap": TERRAFORM / "bootstrap",
}


def _harness(root: Path) -> None:
    lines = [
        'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws" }\n  }\n}\n',
        'provider "aws" {\n  region = "us-west-2"\n}\n',
    ]
    for call, directory in AWS_ONLY.items():
        inputs = sorted(blocks(directory, "variable"))
        lines += [f'variable "{call}__{name}" {{}}\n' for name in inputs]
        body = "".join(f"  {name} = var.{call}__{name}\n" for name in inputs)
        # A relative source: an absolute one makes each module a package of its own, which
        # its relative call of ../kms-key may not leave.
        source = os.path.relpath(directory, root)
        lines.append(f'module "{call}" {{\n  source = "{source}"\n{body}}}\n')
    (root / "main.tf").write_text("\n".join(lines))


def _describe(diagnostic: dict) -> str:
    where = diagnostic.get("range", {})
    line = where.get("start", {}).get("line", "?")
    return (
        f"{diagnostic['severity']}: {where.get('filename', '?')}:{line}: "
        f"{diagnostic['summary']}: {diagnostic.get('detail', '')}"
    )


def test_aws_only_modules_validate_against_the_provider_schema(tmp_path: Path) -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not on PATH")
    if not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip(f"no local provider mirror with hashicorp/aws at {MIRROR} (set $TF_PLUGIN_MIRROR)")
    _harness(tmp_path)
    env = {
        **os.environ,
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "TF_CLI_CONFIG_FILE": "/dev/null",
    }
    init = subprocess.run(
        [terraform, "init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={MIRROR}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert init.returncode == 0, f"terraform init failed:\n{init.stdout}\n{init.stderr}"
    validate = subprocess.run(
        [terraform, "validate", "-json", "-no-color"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    report = json.loads(validate.stdout)
    problems = [_describe(d) for d in report["diagnostics"]]
    assert report["valid"], "\n".join(problems)
    # Deprecations are warnings today and errors in the next provider major.
    assert not problems, "\n".join(problems)
