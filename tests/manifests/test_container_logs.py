"""Fluent Bit's configuration (apps/upstream/fluent-bit) routes each pod's log to its CloudWatch group.

Read as Fluent Bit reads classic mode (docs.fluentbit.io/manual/administration/configuring-fluent-bit/
classic-mode/configuration-file: `[SECTION]` headers, then indented `Key Value` lines; keys are
case-insensitive) and routed as its router does (data-pipeline/router: an output takes a record when
its `Match` wildcard or its `Match_Regex` regular expression matches the record's tag). The tail input
with `Tag kube.*` tags a file with `kube.` + its path, slashes turned into dots (pipeline/inputs/tail,
"Tag"; the kubernetes filter's `Kube_Tag_Prefix` default `kube.var.log.containers.` relies on it).
Every output key must be one the cloudwatch_logs output documents (pipeline/outputs/cloudwatch).
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml
from mlops.rendering.terraform_hcl import parse, unquote

ENVS = ("dev", "prod")
CONTAINER_LOGS = "terraform/modules/container-logs/main.tf"

# pipeline/outputs/cloudwatch, "Configuration parameters" (Fluent Bit 4.x/5.x), plus the keys
# every output takes (name, match, match_regex, alias, workers, retry_limit).
CLOUDWATCH_KEYS = {
    "name", "match", "match_regex", "alias", "workers", "retry_limit",
    "region", "log_group_name", "log_group_template", "log_stream_name", "log_stream_prefix",
    "log_stream_template", "log_key", "log_format", "role_arn", "auto_create_group", "log_group_class",
    "log_retention_days", "endpoint", "sts_endpoint", "metric_namespace", "metric_dimensions",
    "auto_retry_requests", "external_id", "profile", "add_entity",
}  # fmt: skip

# A kubelet log file name: <pod>_<namespace>_<container>-<64 hex container id>.log
SAMPLE_ID = "0123456789abcdef" * 4
SAMPLES = {
    "models": "vllm-support-chat-7d9c6b5f8-x2x9k_models_vllm",
    "argo": "train-and-promote-8kq2p-train-3735928559_argo_main",
    "gateway": "gateway-6f7b8c9d4-abcde_gateway_gateway",
    "monitoring": "kube-prometheus-stack-grafana-5d6f7-qwert_monitoring_grafana",
    "kube-system": "aws-load-balancer-controller-7b5c-zx8vb_kube-system_aws-load-balancer-controller",
    # a namespace whose name only contains another's: must not go to that one's group
    "argo-events": "sensor-1_argo-events_main",
}
GROUP_OF = {
    "models": "models",
    "argo": "argo",
    "gateway": "gateway",
    "monitoring": "platform",
    "kube-system": "platform",
    "argo-events": "platform",
}


def _sections(text: str) -> list[tuple[str, dict[str, str]]]:
    sections: list[tuple[str, dict[str, str]]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = re.fullmatch(r"\[([A-Z]+)\]", line)
        if header:
            sections.append((header.group(1), {}))
            continue
        assert sections and raw.startswith((" ", "\t")), f"line {number}: {raw!r} is outside a section"
        key, _, value = line.partition(" ")
        assert value.strip(), f"line {number}: {key} has no value"
        sections[-1][1][key.lower()] = value.strip()
    return sections


def _config(repo_root: Path, env: str) -> dict[str, list[dict[str, str]]]:
    values = yaml.safe_load((repo_root / f"apps/upstream/fluent-bit/values-{env}.yaml").read_text())
    by_kind: dict[str, list[dict[str, str]]] = {}
    for part in ("service", "inputs", "filters", "outputs"):
        for kind, keys in _sections(values["config"][part]):
            by_kind.setdefault(kind, []).append(keys)
    return by_kind


def _tag(path: str, tag: str) -> str:
    assert tag.endswith("*"), "the test expands only `<prefix>*` tags"
    return tag[:-1] + path.lstrip("/").replace("/", ".")


def _routes(outputs: list[dict[str, str]], tag: str) -> list[dict[str, str]]:
    taken = []
    for output in outputs:
        if "match_regex" in output:
            # flb_regex_match searches (Onigmo); the patterns here are anchored, so search = full match
            if re.search(output["match_regex"], tag):
                taken.append(output)
        elif fnmatch.fnmatchcase(tag, output.get("match", "")):
            taken.append(output)
    return taken


def _terraform_groups(repo_root: Path, env: str) -> set[str]:
    text = (repo_root / CONTAINER_LOGS).read_text()
    prefix = re.search(r'prefix\s*=\s*"([^"]+)"', text).group(1).replace("${var.env}", env)
    names = re.search(r"groups\s*=\s*\[([^\]]+)\]", text).group(1)
    return {f"{prefix}/{name.strip().strip(chr(34))}" for name in names.split(",")}


@pytest.mark.parametrize("env", ENVS)
def test_each_namespace_reaches_its_group(repo_root: Path, env: str) -> None:
    config = _config(repo_root, env)
    (tail,) = [i for i in config["INPUT"] if i["name"] == "tail"]
    outputs = config["OUTPUT"]
    groups = _terraform_groups(repo_root, env)
    for namespace, stem in SAMPLES.items():
        path = f"/var/log/containers/{stem}-{SAMPLE_ID}.log"
        assert fnmatch.fnmatchcase(path, tail["path"]), f"{path} is not tailed ({tail['path']})"
        taken = _routes(outputs, _tag(path, tail["tag"]))
        assert len(taken) == 1, f"{env}: a {namespace} pod's log goes to {len(taken)} outputs, not one"
        want = f"/mlops/{env}/containers/{GROUP_OF[namespace]}"
        assert taken[0]["log_group_name"] == want, (namespace, taken[0]["log_group_name"])
        assert want in groups, f"{want} is not a log group of {CONTAINER_LOGS}: Fluent Bit may not create it"


@pytest.mark.parametrize("env", ENVS)
def test_outputs_follow_the_documented_format(repo_root: Path, env: str) -> None:
    config = _config(repo_root, env)
    region = unquote(parse(repo_root / f"terraform/envs/{env}/terraform.tfvars")["aws_region"])
    for output in config["OUTPUT"]:
        assert output["name"] == "cloudwatch_logs"
        unknown = set(output) - CLOUDWATCH_KEYS
        assert not unknown, f"{env}: keys cloudwatch_logs does not document: {unknown}"
        assert ("log_stream_name" in output) != ("log_stream_prefix" in output), "one of name or prefix"
        assert output["auto_create_group"].lower() in ("off", "false"), "groups come from terraform only"
        assert output["region"] == region
    # the kubernetes filter reads the default tag prefix, which the tail input's kube.* produces
    (kubernetes,) = [f for f in config["FILTER"] if f["name"] == "kubernetes"]
    assert kubernetes["match"] == "kube.*" and "kube_tag_prefix" not in kubernetes


@pytest.mark.parametrize("env", ENVS)
def test_fluent_bit_does_not_ship_its_own_log(repo_root: Path, env: str) -> None:
    (tail,) = [i for i in _config(repo_root, env)["INPUT"] if i["name"] == "tail"]
    own = f"/var/log/containers/fluent-bit-x7k2p_kube-system_fluent-bit-{SAMPLE_ID}.log"
    assert fnmatch.fnmatchcase(own, tail["exclude_path"])
