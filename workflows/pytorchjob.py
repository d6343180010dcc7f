"""The train step of `train-and-promote`: a `kubeflow.org/v1` PyTorchJob made by a resource template.

The job is built as the plain manifest Argo submits; its security contexts and resources
are kubernetes.py's, the same ones every other step uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import yaml
from hera.workflows import Parameter, Resource
from hera.workflows import models as m
from mlops.conventions import argo_json

from . import container_images as images
from . import trainer_command
from .environments import Environment
from .kubernetes import (
    GPU_TOLERATION,
    MLFLOW_TRACKING_URI,
    MLFLOW_TRAINER_SECRET,
    NAMESPACE,
    gpu_affinity,
    image_ref,
    image_user_manifest,
    mlflow_login_manifest,
    requests_equal_limits,
    restricted_manifest,
)
from .parameters import refs

# Argo's resource templates evaluate conditions as Kubernetes label selectors over gjson
# paths (workflow/executor/resource.go): a key must be a qualified name, so gjson queries
# such as `status.conditions.#(type=="Succeeded")` do not parse. The master replica's pod
# counts say the same thing: the job succeeds when the master pod succeeds (the training
# operator's default success policy) and fails when it fails (restartPolicy Never).
SUCCESS_CONDITION = "status.replicaStatuses.Master.succeeded > 0"
FAILURE_CONDITION = "status.replicaStatuses.Master.failed > 0"

# Argo substitutes `{{...}}` into the manifest's text as it is, so a value holding a quote and
# a line break could add fields to the pod spec. Every value therefore enters the manifest
# through an expression whose result is a JSON literal (`toJson(...)` is a quoted, escaped
# string; `asInt(...)` fails on anything but a number): whatever the value, it stays one
# scalar. Integer fields and strings holding `{{...}}` are dumped as markers and then swapped
# for those expressions.
_INT_MARKERS = {
    "workers": (987650001, "{{=asInt(inputs.parameters.workers)}}"),
    "cpu": (987650002, "{{=asInt(inputs.parameters.gpus) * 6}}"),
}


def _json_quoted(node: object, markers: dict[str, str]) -> object:
    """Replace every string holding `{{...}}` in `node` by a marker that maps to its `json_expression`."""
    if isinstance(node, dict):
        return {key: _json_quoted(value, markers) for key, value in node.items()}
    if isinstance(node, list):
        return [_json_quoted(value, markers) for value in node]
    if isinstance(node, str) and "{{" in node and "{{=" not in node:
        marker = f"mlops-json-marker-{len(markers):04d}"
        markers[marker] = argo_json.json_expression(node)
        return marker
    return node


def _trainer_pod(role: str, image: str, repo: Path) -> dict[str, object]:
    """Pod template of one PyTorchJob replica (`master` or `worker`)."""
    values = refs(repo)
    command = trainer_command.torchrun(
        "{{inputs.parameters.gpus}}",
        trainer_command.TRAIN_MODULE,
        trainer_command.train_args(
            values,
            run_name="{{workflow.name}}",
            # one folder per workflow: a retried job resumes from the newest checkpoint in it
            checkpoint_dir="{{inputs.parameters.checkpoint-root}}/{{workflow.name}}",
            result_file="/tmp/result.json",
        ),
    )
    cpu = _INT_MARKERS["cpu"][0]
    memory = "{{=asInt(inputs.parameters.gpus) * 48}}Gi"  # asInt fails the step on anything but a number
    amounts = {"cpu": cpu, "memory": memory, "nvidia.com/gpu": "{{inputs.parameters.gpus}}"}
    container: dict[str, object] = {
        # the training operator finds the container to configure by this name
        "name": "pytorch",
        "image": image,
        "command": command,
        "env": [
            {"name": "MLFLOW_TRACKING_URI", "value": "{{inputs.parameters.mlflow-tracking-uri}}"},
            *mlflow_login_manifest(MLFLOW_TRAINER_SECRET),
            {"name": "GIT_COMMIT", "value": "{{inputs.parameters.commit}}"},
            {"name": "IMAGE_DIGEST", "value": "{{inputs.parameters.image-digest}}"},
            {"name": "HOME", "value": "/tmp"},
            {"name": "HF_HOME", "value": "/tmp/huggingface"},
        ],
        "ports": [{"name": "metrics", "containerPort": int(trainer_command.METRICS_PORT)}],
        "resources": requests_equal_limits(amounts),
        "securityContext": restricted_manifest(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "dshm", "mountPath": "/dev/shm"}],
    }
    return {
        "metadata": {
            "labels": {
                # Finds the workflow's training pods (`kubectl logs -l`, the trainer PodMonitor).
                # Not Argo's own workflows.argoproj.io/workflow: its controller takes every pod
                # with that label for one of the workflow's steps (mlops validate MLOPS107).
                "mlops.platform/workflow": "{{workflow.name}}",
                "mlops.platform/model": "{{workflow.parameters.model-name}}",
                "mlops.platform/replica": role,
            }
        },
        "spec": {
            "serviceAccountName": "trainer",
            "securityContext": image_user_manifest(),
            "tolerations": [GPU_TOLERATION.model_dump(exclude_none=True)],
            "affinity": gpu_affinity().model_dump(by_alias=True, exclude_none=True),
            "containers": [container],
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                # NCCL moves data through shared memory between the ranks of a pod
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
            ],
        },
    }


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: text


def pytorchjob_manifest(part_of: str, repo: Path) -> str:
    """The PyTorchJob the train step creates, as the YAML text Argo substitutes and submits."""
    # the registry comes in as an input so that the overlays patch one field, not the manifest
    image = image_ref("{{inputs.parameters.registry}}", images.TRAINER, "{{inputs.parameters.commit}}")
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {
            "generateName": "{{workflow.name}}-",
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/part-of": part_of,
                "mlops.platform/model": "{{workflow.parameters.model-name}}",
            },
        },
        "spec": {
            "nprocPerNode": "{{inputs.parameters.gpus}}",
            "runPolicy": {
                # keep finished pods so their logs stay readable; they go with the workflow
                # (owner reference) when its TTL deletes it
                "cleanPodPolicy": "None",
                "backoffLimit": 0,
            },
            "pytorchReplicaSpecs": {
                # Never: a failed pod fails the job at once; the train step's retry creates a
                # new job that resumes from the newest checkpoint.
                "Master": {
                    "replicas": 1,
                    "restartPolicy": "Never",
                    "template": _trainer_pod("master", image, repo),
                },
                "Worker": {
                    "replicas": _INT_MARKERS["workers"][0],
                    "restartPolicy": "Never",
                    "template": _trainer_pod("worker", image, repo),
                },
            },
        },
    }
    markers: dict[str, str] = {}
    text = yaml.safe_dump(_json_quoted(job, markers), sort_keys=False, width=1000)
    for number, expression in _INT_MARKERS.values():
        text = text.replace(str(number), expression)
    for marker, expression in markers.items():
        # a function as the replacement: the expression's backslashes stay literal
        text = re.sub(rf"\b{marker}\b", _literal(expression), text)
    return text


def train(env: Environment, part_of: str, repo: Path) -> Resource:
    """Create the PyTorchJob and wait for its master replica to finish."""
    return Resource(
        name="train",
        inputs=[
            Parameter(name="commit"),
            Parameter(name="image-digest"),
            Parameter(name="registry", default=env.registry),
            Parameter(name="checkpoint-root", default=f"s3://{env.bucket('mlflow-artifacts')}/checkpoints"),
            Parameter(name="mlflow-tracking-uri", default=MLFLOW_TRACKING_URI),
            # hyphen-free names: the manifest's expressions read them without quoting
            Parameter(name="workers", value="{{workflow.parameters.num-workers}}"),
            Parameter(name="gpus", value="{{workflow.parameters.gpus-per-worker}}"),
        ],
        outputs=[Parameter(name="job-name", value_from=m.ValueFrom(json_path="{.metadata.name}"))],
        action="create",
        set_owner_reference=True,
        success_condition=SUCCESS_CONDITION,
        failure_condition=FAILURE_CONDITION,
        manifest=pytorchjob_manifest(part_of, repo),
        retry_strategy=m.RetryStrategy(limit=m.IntOrString(root=2), retry_policy="OnFailure"),
    )
