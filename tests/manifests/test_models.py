"""The vLLM model servers: what model-version.yaml puts into them, and how models stay apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from mlops.rendering.render import render_kustomization
from mlops.repository import model_version_file

SUPPORT_CHAT = "overlays/{env}/models/support-chat"


def _version_file(repo: Path, env: str, model: str = "support-chat") -> dict[str, str]:
    path = repo / SUPPORT_CHAT.format(env=env).replace("support-chat", model) / "model-version.yaml"
    return yaml.safe_load(path.read_text())["data"]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _container(pod_spec: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    containers = pod_spec["initContainers" if init else "containers"]
    return next(c for c in containers if c["name"] == name)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_model_server_serves_what_the_version_file_says(rendered, repo_root, env):
    data = _version_file(repo_root, env)
    docs = rendered.docs(SUPPORT_CHAT.format(env=env))
    deployment = rendered.one(SUPPORT_CHAT.format(env=env), "Deployment", "support-chat-vllm")
    template = deployment["spec"]["template"]
    pod = template["spec"]

    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == data["version"]
    assert template["metadata"]["labels"]["app.kubernetes.io/version"] == data["version"]
    assert template["metadata"]["annotations"]["mlops.platform/model-version"] == data["version"]
    assert template["metadata"]["annotations"]["mlops.platform/weights-uri"] == data["weightsUri"]
    assert _env(_container(pod, "fetch-weights", init=True))["WEIGHTS_URI"] == data["weightsUri"]
    assert _env(_container(pod, "fetch-weights", init=True))["WEIGHTS_DIGEST"] == data["weightsDigest"]
    vllm = _container(pod, "vllm")
    assert _env(vllm)["MODEL_NAME"] == data["model"] == "support-chat"
    assert _env(vllm)["MODEL_VERSION"] == data["version"]
    # The gateway reads the version from the second served name, `<model>:<version>`.
    names = vllm["args"][vllm["args"].index("--served-model-name") + 1 :][:2]
    assert names == ["$(MODEL_NAME)", "$(MODEL_NAME):$(MODEL_VERSION)"]

    services = sorted((d for d in docs if d["kind"] == "Service"), key=lambda d: d["metadata"]["name"])
    assert [s["metadata"]["name"] for s in services] == ["support-chat-vllm", "support-chat-vllm-headless"]
    for service in services:
        assert [p["port"] for p in service["spec"]["ports"]] == [8000]
        assert service["spec"]["selector"]["mlops.platform/model"] == "support-chat"

    scaled = _by_kind(docs, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "support-chat-vllm"
    query = scaled["spec"]["triggers"][0]["metadata"]["query"]
    assert 'model_name="support-chat"' in query and "vllm:num_requests_waiting" in query


def test_promote_edit_rolls_the_pods_and_keeps_the_selector(scratch_repo):
    overlay = SUPPORT_CHAT.format(env="dev")
    before = _by_kind(render_kustomization(scratch_repo, overlay), "Deployment")

    # The edit `mlops promote` makes, through its own writer.
    current = model_version_file.load(scratch_repo, "dev", "support-chat")
    new_uri = "s3://mlops-dev-mlflow-artifacts/1/feedc0de/artifacts/model"
    digest = "sha256:" + "f" * 64
    text = current.with_version("7", new_uri, "feedc0de", [], weights_digest=digest)
    (scratch_repo / overlay / "model-version.yaml").write_text(text)
    after = _by_kind(render_kustomization(scratch_repo, overlay), "Deployment")

    annotations = after["spec"]["template"]["metadata"]["annotations"]
    assert annotations != before["spec"]["template"]["metadata"]["annotations"]
    assert annotations["mlops.platform/model-version"] == "7"
    assert annotations["mlops.platform/weights-uri"] == new_uri
    assert (
        _env(_container(after["spec"]["template"]["spec"], "fetch-weights", init=True))["WEIGHTS_URI"]
        == new_uri
    )
    assert (
        _env(_container(after["spec"]["template"]["spec"], "fetch-weights", init=True))["WEIGHTS_DIGEST"]
        == digest
    )
    # A Deployment's selector is immutable: a promote that changed it could never sync.
    assert after["spec"]["selector"] == before["spec"]["selector"]


def test_second_model_is_a_folder_with_its_own_names(scratch_repo):
    """Follow docs/adding-a-model.md: a new folder, its kustomization and model-version.yaml."""
    folder = scratch_repo / "overlays/dev/models/faq-bot"
    folder.mkdir()
    (folder / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "namePrefix: faq-bot-\n"
        "resources:\n  - ../../../../base/models/vllm\n  - model-version.yaml\n"
        "components:\n  - ../../../../base/models/components/model-version\n"
    )
    (folder / "model-version.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: model-version\n"
        'data:\n  model: faq-bot\n  version: "3"\n'
        "  weightsUri: s3://mlops-dev-mlflow-artifacts/2/abc/artifacts/model\n"
        f"  weightsDigest: sha256:{'0' * 64}\n"
    )
    faq = render_kustomization(scratch_repo, "overlays/dev/models/faq-bot")
    chat = render_kustomization(scratch_repo, SUPPORT_CHAT.format(env="dev"))

    faq_names = {(d["kind"], d["metadata"]["name"]) for d in faq}
    chat_names = {(d["kind"], d["metadata"]["name"]) for d in chat}
    assert faq_names.isdisjoint(chat_names)
    assert ("Service", "faq-bot-vllm") in faq_names and ("Deployment", "faq-bot-vllm") in faq_names

    faq_deploy, chat_deploy = _by_kind(faq, "Deployment"), _by_kind(chat, "Deployment")
    faq_selector = faq_deploy["spec"]["selector"]["matchLabels"]
    chat_labels = chat_deploy["spec"]["template"]["metadata"]["labels"]
    # Neither model's Service, PDB or Deployment selects the other's pods.
    assert not all(chat_labels.get(k) == v for k, v in faq_selector.items())
    assert [d["spec"]["selector"] for d in faq if d["kind"] == "Service"] == [faq_selector, faq_selector]
    assert _by_kind(faq, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == faq_selector
    assert _by_kind(faq, "ScaledObject")["spec"]["scaleTargetRef"]["name"] == "faq-bot-vllm"
    assert _env(_container(faq_deploy["spec"]["template"]["spec"], "vllm"))["MODEL_NAME"] == "faq-bot"
    # Both use the one ServiceAccount (Pod Identity models/vllm) the platform component creates.
    assert faq_deploy["spec"]["template"]["spec"]["serviceAccountName"] == "vllm"
    assert chat_deploy["spec"]["template"]["spec"]["serviceAccountName"] == "vllm"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_gpus_match_tensor_parallel_size(rendered, env):
    deployment = rendered.one(SUPPORT_CHAT.format(env=env), "Deployment", "support-chat-vllm")
    vllm = _container(deployment["spec"]["template"]["spec"], "vllm")
    tp = _env(vllm)["SERVE_TENSOR_PARALLEL_SIZE"]
    assert vllm["resources"]["requests"]["nvidia.com/gpu"] == tp
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == tp


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_prefix_caching_is_on_by_default(rendered, env):
    deployment = rendered.one(SUPPORT_CHAT.format(env=env), "Deployment", "support-chat-vllm")
    args = _container(deployment["spec"]["template"]["spec"], "vllm")["args"]
    # vLLM takes the last of the two spellings.
    assert [a for a in args if a.endswith("enable-prefix-caching")][-1] == "--enable-prefix-caching"


def test_no_prefix_caching_component_turns_it_off(scratch_repo):
    overlay = SUPPORT_CHAT.format(env="dev")
    kustomization = scratch_repo / overlay / "kustomization.yaml"
    text = kustomization.read_text().replace(
        "components:\n", "components:\n  - ../../../../base/models/components/no-prefix-caching\n", 1
    )
    kustomization.write_text(text)
    (deployment,) = [d for d in render_kustomization(scratch_repo, overlay) if d["kind"] == "Deployment"]
    args = _container(deployment["spec"]["template"]["spec"], "vllm")["args"]
    assert [a for a in args if a.endswith("enable-prefix-caching")][-1] == "--no-enable-prefix-caching"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_a_leaving_replica_drains_within_its_grace_period(rendered, env):
    deployment = rendered.one(SUPPORT_CHAT.format(env=env), "Deployment", "support-chat-vllm")
    pod = deployment["spec"]["template"]["spec"]
    vllm = _container(pod, "vllm")
    pre_stop = vllm["lifecycle"]["preStop"]["sleep"]["seconds"]
    (drain,) = [int(a.split("=", 1)[1]) for a in vllm["args"] if a.startswith("--shutdown-timeout=")]
    # DNS (CoreDNS ttl 5 s + the gateway's 1 s re-resolve) must see it leave before SIGTERM,
    # and vLLM's drain must end before the kubelet's SIGKILL.
    assert pre_stop >= 10 and drain > 0
    assert pre_stop + drain < pod["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_headless_service_lists_only_ready_pods_of_the_model(rendered, env):
    service = rendered.one(SUPPORT_CHAT.format(env=env), "Service", "support-chat-vllm-headless")
    deployment = rendered.one(SUPPORT_CHAT.format(env=env), "Deployment", "support-chat-vllm")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is False
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_model_pods_land_on_the_gpu_nodepool_they_tolerate(rendered, env):
    deployment = rendered.one(SUPPORT_CHAT.format(env=env), "Deployment", "support-chat-vllm")
    pod = deployment["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    (expression,) = [e for t in terms for e in t["matchExpressions"] if e["key"] == "karpenter.sh/nodepool"]
    (pool_name,) = expression["values"]
    pool = rendered.one(f"overlays/{env}/karpenter", "NodePool", pool_name)
    for taint in pool["spec"]["template"]["spec"]["taints"]:
        assert any(
            t["key"] == taint["key"] and t["effect"] == taint["effect"] and t["operator"] == "Exists"
            for t in pod["tolerations"]
        ), f"model pods do not tolerate {taint} of NodePool {pool_name}"
