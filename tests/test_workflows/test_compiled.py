"""The compiled WorkflowTemplate, CronWorkflow and RBAC, as kustomize renders them per environment."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml
from mlops.conventions.paths import default_crds_dir
from mlops.validate.objects.embedded import embedded_manifests
from mlops.validate.runner.engine import schemas_for, validate

ACCOUNTS = {"dev": "111122223333", "prod": "444455556666"}


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in documents if d.get("kind") == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def template(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [t for t in workflow["spec"]["templates"] if t["name"] == name]
    assert len(matches) == 1, f"template {name}: {len(matches)} found"
    return matches[0]


def tasks(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in template(workflow, "main")["dag"]["tasks"]}


def embedded_of(workflow: dict[str, Any], kind: str) -> dict[str, Any]:
    found = list(embedded_manifests(workflow))
    assert all(e.document is not None for e in found), [e.error for e in found]
    (document,) = [e.document for e in found if e.document and e.document["kind"] == kind]
    return document


def pytorchjob(workflow: dict[str, Any]) -> dict[str, Any]:
    return embedded_of(workflow, "PyTorchJob")


def build_job(workflow: dict[str, Any]) -> dict[str, Any]:
    return embedded_of(workflow, "Job")


def params(task: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in task.get("arguments", {}).get("parameters", [])}


def test_validate_passes_strictly_for_the_workflows_of_both_environments(repo_root):
    report = validate(repo_root, ("dev", "prod"), default_crds_dir(repo_root))
    ours = [p for p in report.problems if "/workflows" in p.file]
    assert ours == []


def test_the_pytorchjob_inside_the_template_is_parsed_and_checked_by_validate(rendered):
    workflow = find(rendered["dev"], "WorkflowTemplate", "train-and-promote")
    job = pytorchjob(workflow)
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    assert set(job["spec"]["pytorchReplicaSpecs"]) == {"Master", "Worker"}


def _order(dag: dict[str, dict[str, Any]]) -> list[str]:
    """Task names in an order that respects every `depends` (ties broken by name)."""
    names = set(dag)
    deps = {
        n: {d for d in re.findall(r"[a-z][a-z0-9-]*", dag[n].get("depends", "")) if d in names} for n in dag
    }
    order: list[str] = []
    while len(order) < len(dag):
        ready = sorted(n for n in dag if n not in order and deps[n] <= set(order))
        assert ready, f"cycle among {set(dag) - set(order)}"
        order.append(ready[0])
    return order


def test_steps_run_build_train_evaluate_promote_in_that_order(rendered):
    dag = tasks(find(rendered["dev"], "WorkflowTemplate", "train-and-promote"))
    order = _order(dag)
    position = {name: i for i, name in enumerate(order)}
    # the parameter check comes first: nothing is built or created before it passed
    assert order[:2] == ["check-parameters", "resolve-commit"]
    assert dag["resolve-commit"]["depends"] == "check-parameters"
    assert position["build-trainer-image"] < position["train"] < position["training-result"]
    assert position["training-result"] < position["evaluate"] < position["promote"] == len(order) - 1
    assert dag["train"]["depends"] == "trainer-image-digest"
    assert (
        dag["trainer-image-digest"]["depends"]
        == "(build-trainer-image.Succeeded || build-trainer-image.Skipped)"
    )
    assert dag["evaluate"]["depends"] == "training-result"
    # the gate: promote runs only when evaluate succeeded
    assert dag["promote"]["depends"] == "evaluate && git-bot-image-digest"
    assert dag["git-bot-image-digest"]["depends"] == (
        "(build-git-bot-image.Succeeded || build-git-bot-image.Skipped)"
    )


def test_builds_are_skipped_when_the_commit_tag_exists(rendered):
    dag = tasks(find(rendered["dev"], "WorkflowTemplate", "train-and-promote"))
    for image in ("trainer", "git-bot"):
        assert (
            dag[f"build-{image}-image"]["when"]
            == f"'{{{{tasks.check-{image}-image.outputs.result}}}}' == 'absent'"
        )
        assert params(dag[f"check-{image}-image"]) == {
            "repository": f"mlops/{image}",
            "tag": "wf-{{tasks.resolve-commit.outputs.result}}",
        }


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_image_tags_are_the_commit_in_the_environments_registry(rendered, env):
    workflow = find(rendered[env], "WorkflowTemplate", "train-and-promote")
    registry = f"{ACCOUNTS[env]}.dkr.ecr.us-west-2.amazonaws.com"
    dag = tasks(workflow)
    build = params(dag["build-trainer-image"])
    assert build["destination"] == f"{registry}/mlops/trainer:wf-{{{{tasks.resolve-commit.outputs.result}}}}"
    # the cache lives in the mutable cache repository: mlops/trainer is tag-immutable
    assert build["cache-ref"] == f"{registry}/mlops-cache/trainer:buildcache"
    assert params(dag["build-git-bot-image"])["destination"] == (
        f"{registry}/mlops/git-bot:wf-{{{{tasks.resolve-commit.outputs.result}}}}"
    )
    (buildkit,) = build_job(workflow)["spec"]["template"]["spec"]["containers"]
    buildkit = buildkit["args"]
    assert "--import-cache=type=registry,ref={{inputs.parameters.cache-ref}}" in buildkit
    assert "--output=type=image,name={{inputs.parameters.destination}},push=true" in buildkit
    # the commit flows into train, evaluate and promote, which run the images built from it
    for name in ("train", "training-result", "evaluate", "promote"):
        assert params(dag[name])["commit"] == "{{tasks.resolve-commit.outputs.result}}"
    train = template(workflow, "train")
    inputs = {p["name"]: p.get("default") for p in train["inputs"]["parameters"]}
    assert inputs["registry"] == registry
    assert inputs["checkpoint-root"] == f"s3://mlops-{env}-mlflow-artifacts/checkpoints"
    for replica in pytorchjob(workflow)["spec"]["pytorchReplicaSpecs"].values():
        (container,) = replica["template"]["spec"]["containers"]
        expected = "{{inputs.parameters.registry}}/mlops/trainer:wf-{{inputs.parameters.commit}}"
        assert container["image"] == expected
    assert (
        template(workflow, "evaluate")["container"]["image"]
        == f"{registry}/mlops/trainer:wf-{{{{inputs.parameters.commit}}}}"
    )
    # the step holding the git token runs the git-bot by the digest ECR reports for this commit
    assert (
        template(workflow, "promote")["container"]["image"]
        == f"{registry}/mlops/git-bot@{{{{inputs.parameters.image-digest}}}}"
    )
    assert params(dag["promote"])["image-digest"] == "{{tasks.git-bot-image-digest.outputs.result}}"
    assert params(dag["git-bot-image-digest"]) == {
        "repository": "mlops/git-bot",
        "tag": "wf-{{tasks.resolve-commit.outputs.result}}",
        "require": "true",
    }
    # nothing of another account leaks into this environment
    text = yaml.safe_dump(rendered[env])
    assert "000000000000" not in text
    assert ACCOUNTS["prod" if env == "dev" else "dev"] not in text


def test_train_waits_for_the_master_replica_with_label_selector_conditions(rendered):
    train = template(find(rendered["dev"], "WorkflowTemplate", "train-and-promote"), "train")
    resource = train["resource"]
    assert resource["action"] == "create"
    assert resource["setOwnerReference"] is True
    assert resource["successCondition"] == "status.replicaStatuses.Master.succeeded > 0"
    assert resource["failureCondition"] == "status.replicaStatuses.Master.failed > 0"
    # Argo parses conditions as label selectors: each key must be a qualified name
    for condition in (resource["successCondition"], resource["failureCondition"]):
        key, _op, value = condition.split()
        assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", key), key
        assert value.isdigit()
    assert train["retryStrategy"]["limit"] == 2


def test_trainer_pods_request_gpus_tolerate_the_taint_and_land_on_the_gpu_nodepool(rendered):
    workflow = find(rendered["dev"], "WorkflowTemplate", "train-and-promote")
    replicas = pytorchjob(workflow)["spec"]["pytorchReplicaSpecs"]
    # bare in the text: an integer; asInt fails the step rather than substitute anything else
    assert replicas["Worker"]["replicas"] == "{{=asInt(inputs.parameters.workers)}}"
    manifest = template(workflow, "train")["resource"]["manifest"]
    assert "replicas: {{=asInt(inputs.parameters.workers)}}" in manifest
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    for role, replica in replicas.items():
        pod = replica["template"]["spec"]
        assert replica["restartPolicy"] == "Never", role
        assert toleration in pod["tolerations"], role
        (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        assert term["matchExpressions"] == [
            {"key": "karpenter.sh/nodepool", "operator": "In", "values": ["gpu"]}
        ]
        assert pod["serviceAccountName"] == "trainer"
        (container,) = pod["containers"]
        assert container["name"] == "pytorch"
        gpus = "{{inputs.parameters.gpus}}"
        assert container["resources"]["requests"]["nvidia.com/gpu"] == gpus
        assert container["resources"]["limits"]["nvidia.com/gpu"] == gpus
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        assert env["MLFLOW_TRACKING_URI"] == "{{inputs.parameters.mlflow-tracking-uri}}"
        # training logs in to MLflow as the trainer identity, from its Secret
        assert env["MLFLOW_TRACKING_USERNAME"] == {
            "secretKeyRef": {"name": "mlflow-trainer", "key": "username"}
        }
        assert env["MLFLOW_TRACKING_PASSWORD"] == {
            "secretKeyRef": {"name": "mlflow-trainer", "key": "password"}
        }
        assert env["GIT_COMMIT"] == "{{inputs.parameters.commit}}"
        assert container["command"][:4] == ["torchrun", f"--nproc_per_node={gpus}", "-m", "trainer.train"]
        # the pods are found by the workflow's name, never by Argo's own label (MLOPS107)
        assert replica["template"]["metadata"]["labels"]["mlops.platform/workflow"] == "{{workflow.name}}"
    evaluate = template(workflow, "evaluate")
    assert toleration in evaluate["tolerations"]
    assert evaluate["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_every_parameter_has_a_description_and_a_default(rendered):
    workflow = find(rendered["prod"], "WorkflowTemplate", "train-and-promote")
    parameters = {p["name"]: p for p in workflow["spec"]["arguments"]["parameters"]}
    assert set(parameters) >= {
        "model-name", "base-model", "dataset", "learning-rate", "max-steps", "batch-size", "seq-len",
        "num-workers", "gpus-per-worker", "target-env", "eval-threshold",
    }  # fmt: skip
    for name, parameter in parameters.items():
        assert parameter.get("description"), name
        assert parameter.get("value") not in (None, ""), name
        assert isinstance(parameter["value"], str), f"{name}: {parameter['value']!r} renders as a number"
        if "enum" in parameter:
            assert parameter["value"] in parameter["enum"], name
    assert parameters["target-env"]["enum"] == ["dev", "prod"]
    assert parameters["target-env"]["value"] == "prod"
    assert "support-chat" in parameters["model-name"]["enum"]
    assert parameters["dataset"]["value"].startswith("s3://mlops-prod-datasets/")


def test_exit_handler_reports_status_failures_and_the_mlflow_run(rendered):
    workflow = find(rendered["dev"], "WorkflowTemplate", "train-and-promote")
    assert workflow["spec"]["onExit"] == "report"
    env = {e["name"]: e["value"] for e in template(workflow, "report")["script"]["env"]}
    assert env["STATUS"] == "{{workflow.status}}"
    assert env["FAILURES"] == "{{workflow.failures}}"
    assert "mlflow-run-url" in env["MLFLOW_RUN_URL"]
    outputs = template(workflow, "training-result")["outputs"]["parameters"]
    assert {
        "name": "mlflow-run-url",
        "globalName": "mlflow-run-url",
        "valueFrom": {"path": "/tmp/outputs/mlflow-run-url"},
    } in outputs


@pytest.mark.parametrize(("env", "suspended"), [("dev", False), ("prod", True)])
def test_cron_retrains_by_reference_to_the_template(rendered, env, suspended):
    cron = find(rendered[env], "CronWorkflow", "retrain-support-chat")
    assert cron["spec"]["schedules"] == ["0 3 * * 1"]
    assert cron["spec"]["suspend"] is suspended
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    spec = cron["spec"]["workflowSpec"]
    assert spec["workflowTemplateRef"] == {"name": "train-and-promote"}
    assert {p["name"]: p["value"] for p in spec["arguments"]["parameters"]}["target-env"] == env


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_rbac_is_least_privilege(rendered, env):
    # The workflow pods' identities; the people's (sso-*, base/workflows/sso-serviceaccounts.yaml)
    # have their own test (tests/manifests/test_access_rbac.py).
    documents = [d for d in rendered[env] if not d["metadata"]["name"].startswith("sso-")]
    roles = {d["metadata"]["name"]: d["rules"] for d in documents if d["kind"] == "Role"}
    assert roles == {
        "argo-executor": [
            {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
        ],
        "train-and-promote": [
            {"apiGroups": ["kubeflow.org"], "resources": ["pytorchjobs"], "verbs": ["create", "get"]}
        ],
    }
    assert not [d for d in documents if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    bindings = {d["metadata"]["name"]: d for d in documents if d["kind"] == "RoleBinding"}
    assert {s["name"] for s in bindings["argo-executor"]["subjects"]} == {
        "train-and-promote",
        "trainer",
        "kaniko",
        "git-bot",
    }
    assert [s["name"] for s in bindings["train-and-promote"]["subjects"]] == ["train-and-promote"]
    accounts = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ServiceAccount"}
    for account in accounts.values():
        assert account["metadata"]["namespace"] == "argo"
        # Pod Identity: terraform's association names the ServiceAccount; nothing on it (MLOPS141)
        assert "eks.amazonaws.com/role-arn" not in (account["metadata"].get("annotations") or {})
    assert set(accounts) == {"train-and-promote", "trainer", "kaniko", "git-bot"}
    workflow = find(documents, "WorkflowTemplate", "train-and-promote")
    by_template = {t["name"]: t.get("serviceAccountName") for t in workflow["spec"]["templates"]}
    assert workflow["spec"]["serviceAccountName"] == "train-and-promote"
    assert by_template["image-digest"] == "kaniko"
    # the build runs as a Job in namespace buildkit, as that namespace's own ServiceAccount
    assert by_template["image-build"] is None
    assert build_job(workflow)["spec"]["template"]["spec"]["serviceAccountName"] == "buildkit"
    assert by_template["promote"] == "git-bot"
    assert by_template["evaluate"] == "trainer"
    secret = find(documents, "ExternalSecret", "git-bot-token")
    assert secret["spec"]["data"][0]["remoteRef"]["key"] == f"mlops/{env}/git-bot-token"
    # MLflow: the trainer identity writes runs and gate tags, the promotion identity moves aliases
    logins = {}
    for step in ("training-result", "evaluate", "promote"):
        spec = template(workflow, step)
        env_vars = (spec.get("container") or spec.get("script"))["env"]
        login_vars = [
            e for e in env_vars if e["name"] in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
        ]
        logins[step] = {e["valueFrom"]["secretKeyRef"]["name"] for e in login_vars}
    assert logins == {
        "training-result": {"mlflow-trainer"},
        "evaluate": {"mlflow-trainer"},
        "promote": {"mlflow-git-bot"},
    }
    for login in ("mlflow-trainer", "mlflow-git-bot"):
        keys = {d["remoteRef"]["key"] for d in find(documents, "ExternalSecret", login)["spec"]["data"]}
        assert keys == {f"mlops/{env}/{login}"}
    assert "Secret" not in {d["kind"] for d in documents}  # no static credentials in the repository


def test_every_workflow_pod_is_restricted_and_the_build_is_a_job_in_namespace_buildkit(rendered):
    workflow = find(rendered["dev"], "WorkflowTemplate", "train-and-promote")
    assert workflow["spec"]["securityContext"]["runAsNonRoot"] is True
    for t in workflow["spec"]["templates"]:
        body = t.get("container") or t.get("script")
        if body is None:
            continue
        assert body["resources"]["requests"] and body["resources"]["limits"], t["name"]
        context = body["securityContext"]
        assert context["runAsNonRoot"] is True and context["readOnlyRootFilesystem"] is True, t["name"]
        assert context["capabilities"]["drop"] == ["ALL"], t["name"]
        assert context.get("seccompProfile", {}).get("type") != "Unconfined", t["name"]
    # the image build step creates a Job in namespace buildkit and waits on its status
    build = template(workflow, "image-build")
    assert "container" not in build
    assert build["resource"]["action"] == "create"
    assert build["resource"]["successCondition"] == "status.succeeded > 0"
    assert build["resource"]["failureCondition"] == "status.failed > 0"
    job = build_job(workflow)
    assert job["metadata"]["namespace"] == "buildkit"
    pod = job["spec"]["template"]
    assert {k for k in pod["metadata"]["annotations"] if k.startswith("policy.mlops.platform/exempt-")} == {
        f"policy.mlops.platform/exempt-MLOPS00{i}" for i in (5, 6)
    }
    (buildkit,) = pod["spec"]["containers"]
    context = buildkit["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["seccompProfile"] == context["appArmorProfile"] == {"type": "Unconfined"}
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["git-checkout", "ecr-login"]


def test_a_typo_inside_the_embedded_pytorchjob_is_a_schema_error(rendered, repo_root):
    workflow = copy.deepcopy(find(rendered["dev"], "WorkflowTemplate", "train-and-promote"))
    train = template(workflow, "train")
    schemas = schemas_for(default_crds_dir(repo_root))
    assert schemas.check(pytorchjob(workflow), templated=True).errors == []
    train["resource"]["manifest"] = train["resource"]["manifest"].replace(
        "restartPolicy: Never", "restartPolcy: Never"
    )
    errors = schemas.check(pytorchjob(workflow), templated=True).errors
    assert any("restartPolcy" in message for _where, message in errors), errors


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_canary_analysis_cron_runs_the_git_bot_per_planned_model(rendered, env):
    cron = find(rendered[env], "CronWorkflow", "canary-analysis")
    assert (cron["spec"]["schedules"], cron["spec"]["concurrencyPolicy"]) == (["*/5 * * * *"], "Forbid")
    # by reference: the controller runs only workflows that name a WorkflowTemplate (Strict)
    assert cron["spec"]["workflowSpec"] == {"workflowTemplateRef": {"name": "canary-analysis"}}
    spec = find(rendered[env], "WorkflowTemplate", "canary-analysis")["spec"]
    step = template({"spec": spec}, "analyze-support-chat")
    assert step["container"]["args"] == [
        "canary", "analyze", f"--env={env}", "--model=support-chat", "--workflow={{workflow.name}}",
    ]  # fmt: skip
    registry = f"{ACCOUNTS[env]}.dkr.ecr.us-west-2.amazonaws.com"
    assert step["container"]["image"] == f"{registry}/mlops/git-bot:0.4.0"
    # The git-bot account: no AWS role policy, only the executor's WorkflowTaskResult rights.
    assert (spec["serviceAccountName"], step["serviceAccountName"]) == ("git-bot", "git-bot")
    assert {v["name"]: v for v in spec["volumes"]}["git-bot-token"]["secret"]["secretName"] == "git-bot-token"
    assert [s["template"] for group in template({"spec": spec}, "analyze")["steps"] for s in group] == [
        "analyze-support-chat"
    ]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_controller_runs_only_workflow_templates_and_every_cron_references_one(rendered, env):
    from mlops.conventions.paths import find_repo_root

    values = yaml.safe_load(
        (find_repo_root() / f"apps/upstream/argo-workflows/values-{env}.yaml").read_text(encoding="utf-8")
    )
    assert values["controller"]["workflowRestrictions"] == {"templateReferencing": "Strict"}
    templates = {d["metadata"]["name"] for d in rendered[env] if d["kind"] == "WorkflowTemplate"}
    crons = [d for d in rendered[env] if d["kind"] == "CronWorkflow"]
    assert {c["metadata"]["name"]: set(c["spec"]["workflowSpec"]) for c in crons} == {
        "canary-analysis": {"workflowTemplateRef"},
        "retrain-support-chat": {"workflowTemplateRef", "arguments"},
    }
    assert {c["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] for c in crons} <= templates
