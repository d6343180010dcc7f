"""Static checks of terraform/: what `terraform validate` would catch without provider downloads."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from tfrepo import (
    ENVS,
    MODULE_META_ARGS,
    MODULES,
    PLATFORM,
    TERRAFORM,
    backend_config,
    blocks,
    evaluate,
    module_dirs,
    module_source,
    parse,
    platform_name,
    resources,
    tf_files,
    tfvars,
    unquote,
)

# The platform contract (BRIEF): one AWS account per environment, one region, EKS 1.35 (in EKS
# standard support until 2027-03-27).
ACCOUNTS = {"dev": "111122223333", "prod": "444455556666"}
REGION = "us-west-2"
KUBERNETES_VERSION = "1.35"

# All an environment folder holds: the values and the state location of the one platform root.
ENV_FILES = {"terraform.tfvars", "backend.s3.tfbackend"}

# Folders of .tf files: every module, the platform root and the state bootstrap.
ARGOCD = TERRAFORM / "argocd"
CONFIGURATIONS = [*module_dirs(), PLATFORM, ARGOCD, TERRAFORM / "bootstrap"]


def test_fmt_check_passes() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not on PATH: `terraform fmt -check` cannot run here")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff"],
        cwd=TERRAFORM,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"run `terraform -chdir=terraform fmt -recursive`:\n{result.stdout}"


def test_every_tf_file_parses() -> None:
    files = tf_files()
    assert len(files) > 20
    for path in files:
        parse(path)


def test_every_variable_has_a_type_and_a_description() -> None:
    problems = []
    for path in tf_files():
        for block in parse(path).get("variable", []):
            for label, body in block.items():
                for field in ("type", "description"):
                    if not body.get(field):
                        problems.append(
                            f"{path.relative_to(TERRAFORM)}: variable {unquote(label)}: no {field}"
                        )
    assert not problems, "\n".join(problems)


def test_every_output_has_a_description() -> None:
    problems = []
    for path in tf_files():
        for block in parse(path).get("output", []):
            for label, body in block.items():
                if not body.get("description"):
                    problems.append(f"{path.relative_to(TERRAFORM)}: output {unquote(label)}: no description")
    assert not problems, "\n".join(problems)


def _references(directory) -> str:
    """A folder's .tf files as text (comments are gone), without the variable blocks that declare
    and the moved blocks, whose addresses name state (old addresses included), not configuration."""
    parts = []
    for path in sorted(directory.glob("*.tf")):
        parts.append(json.dumps({k: v for k, v in parse(path).items() if k not in {"variable", "moved"}}))
    return "\n".join(parts)


@pytest.mark.parametrize("directory", CONFIGURATIONS, ids=lambda p: p.name)
def test_every_input_is_used(directory) -> None:
    text = _references(directory)
    unused = [
        name for name in blocks(directory, "variable") if not re.search(rf"\bvar\.{name}(?![\w-])", text)
    ]
    assert not unused, f"{directory.relative_to(TERRAFORM)}: variables declared but never used: {unused}"


@pytest.mark.parametrize("directory", CONFIGURATIONS, ids=lambda p: p.name)
def test_module_calls_pass_exactly_the_module_inputs(directory) -> None:
    where = directory.relative_to(TERRAFORM)
    problems = []
    for call, body in blocks(directory, "module").items():
        if not unquote(body["source"]).startswith("."):
            continue  # registry modules: pinned (below), their inputs are the registry's
        source = module_source(call, directory)
        assert source.is_dir(), f"{where}: module {call}: source {unquote(body['source'])} is not a folder"
        declared = blocks(source, "variable")
        passed = set(body) - MODULE_META_ARGS
        required = {name for name, variable in declared.items() if "default" not in variable}
        for name in sorted(passed - set(declared)):
            problems.append(f"{where}: module {call}: argument {name} is not a variable of {source.name}")
        for name in sorted(required - passed):
            problems.append(f"{where}: module {call}: required variable {name} of {source.name} not set")
    assert not problems, "\n".join(problems)


def test_the_platform_composes_the_modules() -> None:
    calls = {module_source(call).name for call in blocks(PLATFORM, "module")}
    assert calls >= {"network", "eks", "karpenter", "data", "mlflow-db", "ecr", "workload-roles"}
    # The in-cluster stage is its own root: the platform never needs to reach the API.
    assert "argocd-bootstrap" not in calls
    assert {module_source(c, ARGOCD).name for c in blocks(ARGOCD, "module")} == {"argocd-bootstrap"}


def test_the_platform_has_no_kubernetes_provider() -> None:
    # A helm/kubernetes resource in the platform's state makes every later plan refresh it
    # through the API endpoint, which prod's apply location cannot reach.
    settings = [block for path in PLATFORM.glob("*.tf") for block in parse(path).get("terraform", [])]
    providers = {
        unquote(name) for block in settings for p in block.get("required_providers", []) for name in p
    }
    assert not providers & {"helm", "kubernetes"}, providers


def test_argocd_reads_the_platform_state_of_its_env() -> None:
    remote = resources(ARGOCD, "data")[("terraform_remote_state", "platform")]
    config = remote["config"]
    for env in ENVS:
        scope = {"var.env": env}
        assert evaluate(config["bucket"], scope) == backend_config(env)["bucket"]
        assert evaluate(config["key"], scope) == backend_config(env)["key"]


@pytest.mark.parametrize("directory", CONFIGURATIONS, ids=lambda p: p.name)
def test_module_outputs_referenced_exist(directory) -> None:
    where = directory.relative_to(TERRAFORM)
    text = _references(directory)
    calls = blocks(directory, "module")
    problems = []
    for call, output in sorted(set(re.findall(r"\bmodule\.(\w+)\.(\w+)", text))):
        if call not in calls:
            problems.append(f"{where}: module.{call} is not a module block of {where}")
        elif unquote(calls[call]["source"]).startswith("."):
            if output not in blocks(module_source(call, directory), "output"):
                problems.append(f"{where}: module.{call}.{output} is not an output of module {call}")
    assert not problems, "\n".join(problems)


RESOURCE_REFERENCE = re.compile(r"(?<![\w.])(data\.)?((?:aws|random|helm|kubernetes)_\w+)\.(\w+)")


@pytest.mark.parametrize("directory", CONFIGURATIONS, ids=lambda p: p.name)
def test_every_resource_referenced_is_declared(directory) -> None:
    # `terraform validate` checks this only where it runs offline; this covers the rest.
    where = directory.relative_to(TERRAFORM)
    declared = {"": set(resources(directory)), "data.": set(resources(directory, "data"))}
    missing = sorted(
        f"{kind}{rtype}.{name}"
        for kind, rtype, name in set(RESOURCE_REFERENCE.findall(_references(directory)))
        if (rtype, name) not in declared[kind]
    )
    assert not missing, f"{where}: references to undeclared resources: {missing}"


# Set where terraform runs (TF_VAR_... or -var), never committed: who may reach the API.
SITE_INPUTS = {"cluster_api_access"}


def test_dev_and_prod_set_the_same_variables() -> None:
    declared = set(blocks(PLATFORM, "variable")) - SITE_INPUTS
    set_in = {env: set(tfvars(env)) for env in ENVS}
    assert set_in["dev"] == set_in["prod"], (
        f"only in dev: {set_in['dev'] - set_in['prod']}, only in prod: {set_in['prod'] - set_in['dev']}"
    )
    for env in ENVS:
        assert set_in[env] == declared, (
            f"envs/{env}/terraform.tfvars: unset variables {sorted(declared - set_in[env])}, "
            f"unknown variables {sorted(set_in[env] - declared)}"
        )


def test_environments_hold_only_values_and_state_location() -> None:
    # A .tf file in envs/<env> would make it a second root that drifts from the platform.
    folders = {p.name for p in (TERRAFORM / "envs").iterdir()}
    assert folders == set(ENVS)
    for env in ENVS:
        files = {p.name for p in (TERRAFORM / "envs" / env).iterdir()}
        assert files == ENV_FILES, f"envs/{env} holds {sorted(files)}; only {sorted(ENV_FILES)} belong there"


@pytest.mark.parametrize("env", ENVS)
def test_tfvars_match_the_platform_contract(env: str) -> None:
    values = tfvars(env)
    assert values["env"] == env
    assert values["aws_account_id"] == ACCOUNTS[env]
    assert values["aws_region"] == REGION
    assert values["kubernetes_version"] == KUBERNETES_VERSION
    for arn in values["cluster_admin_principal_arns"]:
        assert arn.startswith(f"arn:aws:iam::{ACCOUNTS[env]}:"), f"{env}: admin {arn} is in another account"


def test_provider_refuses_other_accounts() -> None:
    providers = parse(PLATFORM / "providers.tf")["provider"]
    aws = next(body for p in providers for name, body in p.items() if unquote(name) == "aws")
    assert aws["allowed_account_ids"] == ["${var.aws_account_id}"]


def test_remote_state_is_locked_and_encrypted() -> None:
    terraform = parse(PLATFORM / "backend.tf")["terraform"][0]
    s3 = next(body for name, body in terraform["backend"][0].items() if unquote(name) == "s3")
    assert s3["use_lockfile"] is True
    assert s3["encrypt"] is True
    # Where the state is, is the environment's to say: a bucket here would send both to one.
    assert not {"bucket", "key", "region"} & set(s3), (
        "platform/backend.tf: bucket/key/region belong in envs/<env>"
    )


@pytest.mark.parametrize("env", ENVS)
def test_remote_state_is_per_account(env: str) -> None:
    config = backend_config(env)
    assert set(config) == {"bucket", "key", "region"}
    assert config["bucket"] == platform_name(env, "tfstate")
    assert config["key"] == f"envs/{env}/terraform.tfstate"
    assert config["region"] == tfvars(env)["aws_region"]


def test_providers_and_terraform_are_pinned() -> None:
    problems = []
    for directory in sorted({path.parent for path in tf_files()}):
        where = directory.relative_to(TERRAFORM)
        settings = [block for path in directory.glob("*.tf") for block in parse(path).get("terraform", [])]
        if not any("required_version" in block for block in settings):
            problems.append(f"{where}: no required_version")
        for block in settings:
            for providers in block.get("required_providers", []):
                for name, spec in providers.items():
                    if not (isinstance(spec, dict) and spec.get("version")):
                        problems.append(f"{where}: provider {name} has no version constraint")
        for call, body in blocks(directory, "module").items():
            if not unquote(body["source"]).startswith(".") and not re.fullmatch(
                r'"\d+\.\d+\.\d+"', body.get("version", "")
            ):
                problems.append(f"{where}: module {call}: pin an exact version")
    assert not problems, "\n".join(problems)


def test_prod_is_the_resilient_environment() -> None:
    # The checkov skips for multi-AZ, deletion protection and the public endpoint rely on this.
    prod, dev = tfvars("prod"), tfvars("dev")
    assert prod["db_multi_az"] is True
    assert prod["db_deletion_protection"] is True
    assert prod["single_nat_gateway"] is False
    assert prod["cluster_endpoint_public_access"] is False
    assert prod["data_force_destroy"] is False
    assert prod["argocd_high_availability"] is True
    assert prod["db_backup_retention_days"] >= dev["db_backup_retention_days"]


SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\bA(KI|SI)A[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "literal password": re.compile(r"\b(password|secret_string|token)\s*=\s*\"[^\"$]+\"", re.IGNORECASE),
}


def test_no_secret_in_any_file() -> None:
    problems = []
    for path in sorted(p for p in TERRAFORM.rglob("*") if p.is_file() and ".terraform" not in p.parts):
        text = path.read_text()
        for what, pattern in SECRET_PATTERNS.items():
            if pattern.search(text):
                problems.append(f"{path.relative_to(TERRAFORM)}: {what}")
    assert not problems, "\n".join(problems)


def test_ci_registry_replicates_platform_images_to_prod() -> None:
    """CI pushes to dev's registry only; prod's pods pull mlops/* from prod's, so it must be copied there."""
    dev, prod = tfvars("dev"), tfvars("prod")
    assert dev["ecr_replicate_to_accounts"] == [ACCOUNTS["prod"]] and dev["ecr_replicate_from_accounts"] == []
    assert (
        prod["ecr_replicate_from_accounts"] == [ACCOUNTS["dev"]] and prod["ecr_replicate_to_accounts"] == []
    )
    ecr = resources(MODULES / "ecr")
    rule = ecr[("aws_ecr_replication_configuration", "to_accounts")]["replication_configuration"][0]["rule"][
        0
    ]
    assert {k: unquote(v) for k, v in rule["repository_filter"][0].items()} == {
        "filter": "mlops/",
        "filter_type": "PREFIX_MATCH",
    }
    policy = ecr[("aws_ecr_registry_policy", "replication_from_accounts")]["policy"]
    assert "ecr:ReplicateImage" in policy and "repository/mlops/*" in policy
