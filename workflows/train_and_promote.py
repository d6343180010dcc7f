"""WorkflowTemplate `train-and-promote`: build the trainer, train a PyTorchJob, gate, promote.

Steps, in order (the DAG below and `mlops workflows run-local` share `STEPS`):
  0. check-parameters: every parameter against its pattern (parameters.py); a bad value fails
     the run before anything is built or created;
  1. build: resolve the commit, then build the trainer and git-bot images with rootless BuildKit from
     this repository at that commit (tag = commit), each skipped when ECR already has the tag;
  2. train: a `kubeflow.org/v1` PyTorchJob created by a resource template, then the version it
     registered (alias `candidate`) read back from MLflow with a link to its run;
  3. evaluate: `python -m trainer.evaluate`, the gate (non-zero exit stops the chain);
  4. promote: `mlops promote --automated` from the git-bot image.
An exit handler reports the outcome (status, failed steps, MLflow run link).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from hera.workflows import (
    DAG,
    Container,
    Env,
    GitArtifact,
    Parameter,
    Resource,
    Script,
    SecretEnv,
    Task,
    WorkflowTemplate,
)
from hera.workflows import models as m
from mlops import argo_json

from . import container_images as images
from . import steps, trainer_command
from .environments import BASE, GIT_REPOSITORY, REGION, Environment
from .parameters import REPO_ROOT, parameters, patterns, refs

NAME = "train-and-promote"
NAMESPACE = "argo"
STEPS: tuple[str, ...] = ("build", "train", "evaluate", "promote")
"""The chain a run walks through; `run-local` runs the same names in the same order."""

MLFLOW_TRACKING_URI = "http://mlflow.mlflow.svc.cluster.local:5000"
GPU_NODEPOOL = "gpu"
GPU_TOLERATION = m.Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
GIT_TOKEN_SECRET = "git-bot-token"
"""Kubernetes Secret made by the ExternalSecret from Secrets Manager `mlops/<env>/git-bot-token`."""

# Argo's resource templates evaluate conditions as Kubernetes label selectors over gjson
# paths (workflow/executor/resource.go): a key must be a qualified name, so gjson queries
# such as `status.conditions.#(type=="Succeeded")` do not parse. The master replica's pod
# counts say the same thing: the job succeeds when the master pod succeeds (the training
# operator's default success policy) and fails when it fails (restartPolicy Never).
SUCCESS_CONDITION = "status.replicaStatuses.Master.succeeded > 0"
FAILURE_CONDITION = "status.replicaStatuses.Master.failed > 0"

# Runs of one model take a mutex: the trainer moves the model's `candidate` alias, and the
# step after training reads it back.
MUTEX = "train-and-promote-{{workflow.parameters.model-name}}"

_TMP = m.VolumeMount(name="tmp", mount_path="/tmp")

IMAGE_UID = 10001
"""The user images/trainer and images/git-bot create (`useradd --uid 10001`) and run as.
Their pods run as it too: another UID has no passwd entry or home there (MLOPS014)."""


def _image_user() -> m.PodSecurityContext:
    """Pod security context of a step that runs an image built here: the image's own user."""
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=IMAGE_UID,
        run_as_group=IMAGE_UID,
        fs_group=IMAGE_UID,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


_WORKSPACE = "/workspace"
_GIT_TOKEN_DIR = "/var/run/secrets/git-bot"


def _restricted() -> m.SecurityContext:
    """Container security context of every step that does not need root."""
    return m.SecurityContext(
        run_as_non_root=True,
        read_only_root_filesystem=True,
        allow_privilege_escalation=False,
        capabilities=m.Capabilities(drop=["ALL"]),
    )


def _resources(cpu: str, memory: str, gpus: str | None = None) -> m.ResourceRequirements:
    """Requests equal to limits: steps are sized, not bursting."""
    amounts = {"cpu": cpu, "memory": memory, **({"nvidia.com/gpu": gpus} if gpus else {})}
    return m.ResourceRequirements(requests=dict(amounts), limits=dict(amounts))


def _gpu_affinity() -> m.Affinity:
    """Schedule onto the GPU NodePool that Karpenter provisions (base/karpenter)."""
    term = m.NodeSelectorTerm(
        match_expressions=[
            m.NodeSelectorRequirement(key="karpenter.sh/nodepool", operator="In", values=[GPU_NODEPOOL])
        ]
    )
    return m.Affinity(
        node_affinity=m.NodeAffinity(
            required_during_scheduling_ignored_during_execution=m.NodeSelector(node_selector_terms=[term])
        )
    )


def _image(registry: str, image: images.RepositoryImage, tag: str) -> str:
    return f"{registry}/{image.repository}:{tag}"


# --- step 0: check the parameters -------------------------------------------------------------


def _check_parameters(env: Environment, repo: Path) -> Script:
    """The run's first step: every parameter must match its pattern, or nothing else runs."""
    return Script(
        name="check-parameters",
        image=images.PYTHON,
        command=["python"],
        source=steps.script_source(steps.check_parameters, {"patterns": "PATTERNS"}),
        env=[
            Env(name="PATTERNS", value=json.dumps(patterns(repo), sort_keys=True)),
            # an env value is one string whatever it holds: Argo escapes it into the pod spec
            *(Env(name=steps.parameter_variable(p.name), value=p.ref) for p in parameters(env, repo)),
        ],
        resources=_resources("100m", "128Mi"),
        security_context=_restricted(),
        volume_mounts=[_TMP],
    )


# --- step 1: build -------------------------------------------------------------------------


def _resolve_commit() -> Container:
    """Print the commit `git-revision` names (a 40-hex commit is taken as is)."""
    script = r"""set -eu
case "$REVISION" in
  *[!0-9a-f]*) ;;
  *) if [ "${#REVISION}" -eq 40 ]; then echo "$REVISION"; exit 0; fi ;;
esac
url="$REPOSITORY"
if [ -n "${GIT_TOKEN:-}" ]; then url="https://x-access-token:${GIT_TOKEN}@${REPOSITORY#https://}"; fi
commit=$(git ls-remote "$url" "refs/heads/$REVISION" "refs/tags/$REVISION^{}" "refs/tags/$REVISION" \
  | head -n 1 | cut -f 1)
if [ -z "$commit" ]; then echo "no branch or tag $REVISION in $REPOSITORY" >&2; exit 1; fi
echo "$commit"
"""
    return Container(
        name="resolve-commit",
        image=images.GIT,
        command=["sh", "-c", script],
        env=[
            Env(name="REPOSITORY", value=GIT_REPOSITORY),
            Env(name="REVISION", value="{{workflow.parameters.git-revision}}"),
            Env(name="HOME", value="/tmp"),
            SecretEnv(name="GIT_TOKEN", secret_name=GIT_TOKEN_SECRET, secret_key="token", optional=True),
        ],
        resources=_resources("100m", "128Mi"),
        security_context=_restricted(),
        volume_mounts=[_TMP],
    )


def _image_digest() -> Container:
    """Print the digest of `repository:tag` in ECR, or `absent`; with `require`, absence is an error."""
    # batch-get-image (not describe-images): the ECR push policy already allows it; a missing
    # tag is a failure entry in the answer, not an error
    script = r"""set -u
if ! digest=$(aws ecr batch-get-image --region "$REGION" --repository-name "$REPOSITORY" \
    --image-ids "imageTag=$TAG" --query 'images[0].imageId.imageDigest' --output text); then
  exit 1
fi
if [ -n "$digest" ] && [ "$digest" != None ]; then
  echo "$digest"
elif [ "$REQUIRE" = true ]; then
  echo "no image $REPOSITORY:$TAG in ECR" >&2; exit 1
else
  echo absent
fi
"""
    return Container(
        name="image-digest",
        inputs=[
            Parameter(name="repository"),
            Parameter(name="tag"),
            Parameter(name="require", default="false"),
        ],
        image=images.AWS_CLI,
        command=["sh", "-c", script],
        env=[
            Env(name="REGION", value=REGION),
            Env(name="REPOSITORY", value="{{inputs.parameters.repository}}"),
            Env(name="TAG", value="{{inputs.parameters.tag}}"),
            Env(name="REQUIRE", value="{{inputs.parameters.require}}"),
            Env(name="HOME", value="/tmp"),
        ],
        service_account_name="kaniko",
        resources=_resources("100m", "256Mi"),
        security_context=_restricted(),
        volume_mounts=[_TMP],
    )


_BUILDKIT_STATE = "/home/user/.local/share/buildkit"
_DOCKER_CONFIG = "/home/user/.docker"


def _ecr_login() -> m.UserContainer:
    """Init container: write an ECR login for the destination's registry where BuildKit reads it.

    BuildKit, unlike Kaniko, has no ECR credential helper: buildctl reads $DOCKER_CONFIG.
    The token (12 h) comes from the pod's IRSA role, the same one that pushes.
    """
    script = r"""set -eu
registry="${DESTINATION%%/*}"
auth=$(printf 'AWS:%s' "$(aws ecr get-login-password --region "$REGION")" | base64 | tr -d '\n')
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$registry" "$auth" > "$DOCKER_CONFIG/config.json"
"""
    return m.UserContainer(
        name="ecr-login",
        image=images.AWS_CLI,
        command=["sh", "-c", script],
        env=[
            m.EnvVar(name="REGION", value=REGION),
            m.EnvVar(name="DESTINATION", value="{{inputs.parameters.destination}}"),
            m.EnvVar(name="DOCKER_CONFIG", value=_DOCKER_CONFIG),
            m.EnvVar(name="HOME", value="/tmp"),
        ],
        resources=_resources("100m", "256Mi"),
        security_context=_restricted(),
        volume_mounts=[_TMP, m.VolumeMount(name="docker-config", mount_path=_DOCKER_CONFIG)],
    )


def _image_build() -> Container:
    """Build one image of this repository at a commit with rootless BuildKit and push it to ECR.

    Kaniko's upstream was archived in June 2025; BuildKit is maintained by the Moby project.
    Rootless BuildKit runs as UID 1000 inside a user namespace it creates with newuidmap
    (setuid), so it keeps privilege escalation and its file capabilities, and needs the
    seccomp and AppArmor profiles unconfined (moby/buildkit examples/kubernetes/job.rootless.yaml,
    docs/rootless.md); namespace argo enforces Pod Security `privileged` for this pod alone's sake.
    The layer cache lives in the image's `mlops-cache/<image>` repository, which is mutable:
    the image repositories are tag-immutable and would refuse a rewritten cache tag.
    """
    cache = "type=registry,ref={{inputs.parameters.cache-ref}}"
    return Container(
        name="image-build",
        inputs=[
            Parameter(name="destination"),
            Parameter(name="cache-ref"),
            Parameter(name="context"),
            Parameter(name="dockerfile"),
            GitArtifact(
                name="source",
                path=_WORKSPACE,
                repo=GIT_REPOSITORY,
                revision="{{inputs.parameters.commit}}",
                username_secret=m.SecretKeySelector(name=GIT_TOKEN_SECRET, key="username", optional=True),
                password_secret=m.SecretKeySelector(name=GIT_TOKEN_SECRET, key="token", optional=True),
            ),
            Parameter(name="commit"),
        ],
        image=images.BUILDKIT,
        command=["buildctl-daemonless.sh"],
        args=[
            "build",
            "--frontend=dockerfile.v0",
            f"--local=context={_WORKSPACE}/{{{{inputs.parameters.context}}}}",
            f"--local=dockerfile={_WORKSPACE}",
            "--opt=filename={{inputs.parameters.dockerfile}}",
            "--opt=build-arg:GIT_COMMIT={{inputs.parameters.commit}}",
            "--opt=label:org.opencontainers.image.revision={{inputs.parameters.commit}}",
            "--output=type=image,name={{inputs.parameters.destination}},push=true",
            f"--export-cache={cache},mode=max,image-manifest=true,oci-mediatypes=true",
            f"--import-cache={cache}",
        ],
        env=[
            # no nested process sandbox: the pod is the sandbox (docs/rootless.md)
            Env(name="BUILDKITD_FLAGS", value="--oci-worker-no-process-sandbox"),
            Env(name="DOCKER_CONFIG", value=_DOCKER_CONFIG),
        ],
        init_containers=[_ecr_login()],
        volumes=[
            m.Volume(name="docker-config", empty_dir=m.EmptyDirVolumeSource(medium="Memory")),
            m.Volume(name="buildkit-state", empty_dir=m.EmptyDirVolumeSource()),
        ],
        volume_mounts=[
            m.VolumeMount(name="docker-config", mount_path=_DOCKER_CONFIG, read_only=True),
            m.VolumeMount(name="buildkit-state", mount_path=_BUILDKIT_STATE),
        ],
        service_account_name="kaniko",
        annotations={
            # mlops validate's policies this pod is exempt from, and why
            "policy.mlops.platform/exempt-MLOPS005": "rootlesskit writes its runtime dir and /etc mounts",
            "policy.mlops.platform/exempt-MLOPS006": "newuidmap/newgidmap need their file capabilities "
            "to map the build's user namespace",
        },
        pod_security_context=m.PodSecurityContext(run_as_non_root=True, run_as_user=1000, run_as_group=1000),
        resources=_resources("2", "8Gi"),
        security_context=m.SecurityContext(
            run_as_non_root=True,
            run_as_user=1000,
            run_as_group=1000,
            read_only_root_filesystem=False,
            seccomp_profile=m.SeccompProfile(type="Unconfined"),
            app_armor_profile=m.AppArmorProfile(type="Unconfined"),
        ),
    )


def _build_tasks(env: Environment, commit: str) -> dict[str, Task]:
    """Check-then-build tasks for each image of this repository the run needs, by name."""
    tasks: dict[str, Task] = {}
    for image in (images.TRAINER, images.GIT_BOT):
        check = Task(
            name=f"check-{image.name}-image",
            template="image-digest",
            arguments={"repository": image.repository, "tag": commit},
            depends="resolve-commit",
        )
        tasks[check.name] = check
        build = Task(
            name=f"build-{image.name}-image",
            template="image-build",
            arguments={
                "destination": _image(env.registry, image, commit),
                "cache-ref": f"{env.registry}/{image.cache_repository}:buildcache",
                "context": image.context,
                "dockerfile": image.dockerfile,
                "commit": commit,
            },
            depends=check.name,
            # quoted: a digest (sha256:...) is no bare word to Argo's `when` expression parser
            when=f"'{{{{tasks.{check.name}.outputs.result}}}}' == 'absent'",
        )
        tasks[build.name] = build
    # the trainer records the digest it ran as (model version tag image_digest)
    digest = Task(
        name="trainer-image-digest",
        template="image-digest",
        arguments={"repository": images.TRAINER.repository, "tag": commit, "require": "true"},
        depends=_built("build-trainer-image"),
    )
    tasks[digest.name] = digest
    return tasks


def _built(task: str) -> str:
    """A `depends` clause: the build task ran and succeeded, or was skipped (the image existed)."""
    return f"({task}.Succeeded || {task}.Skipped)"


# --- step 2: train ---------------------------------------------------------------------------

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


def _trainer_pod(role: str, image: str) -> dict[str, object]:
    """Pod template of one PyTorchJob replica (`master` or `worker`)."""
    values = refs()
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
            {"name": "GIT_COMMIT", "value": "{{inputs.parameters.commit}}"},
            {"name": "IMAGE_DIGEST", "value": "{{inputs.parameters.image-digest}}"},
            {"name": "HOME", "value": "/tmp"},
            {"name": "HF_HOME", "value": "/tmp/huggingface"},
        ],
        "ports": [{"name": "metrics", "containerPort": int(trainer_command.METRICS_PORT)}],
        "resources": {"requests": dict(amounts), "limits": dict(amounts)},
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "dshm", "mountPath": "/dev/shm"}],
    }
    return {
        "metadata": {
            "labels": {
                # `argo logs` and the Argo UI show pods carrying this label with the workflow
                "workflows.argoproj.io/workflow": "{{workflow.name}}",
                "mlops.platform/model": "{{workflow.parameters.model-name}}",
                "mlops.platform/replica": role,
            }
        },
        "spec": {
            "serviceAccountName": "trainer",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": IMAGE_UID,
                "runAsGroup": IMAGE_UID,
                "fsGroup": IMAGE_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "tolerations": [GPU_TOLERATION.model_dump(exclude_none=True)],
            "affinity": _gpu_affinity().model_dump(by_alias=True, exclude_none=True),
            "containers": [container],
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                # NCCL moves data through shared memory between the ranks of a pod
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
            ],
        },
    }


def pytorchjob_manifest() -> str:
    """The PyTorchJob the train step creates, as the YAML text Argo substitutes and submits."""
    # the registry comes in as an input so that the overlays patch one field, not the manifest
    image = _image("{{inputs.parameters.registry}}", images.TRAINER, "{{inputs.parameters.commit}}")
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {
            "generateName": "{{workflow.name}}-",
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/part-of": NAME,
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
                    "template": _trainer_pod("master", image),
                },
                "Worker": {
                    "replicas": _INT_MARKERS["workers"][0],
                    "restartPolicy": "Never",
                    "template": _trainer_pod("worker", image),
                },
            },
        },
    }
    markers: dict[str, str] = {}
    text = yaml.safe_dump(_json_quoted(job, markers), sort_keys=False, width=1000)
    for marker, expression in _INT_MARKERS.values():
        text = text.replace(str(marker), expression)
    for marker, expression in markers.items():
        text = re.sub(rf"\b{marker}\b", lambda _m, e=expression: e, text)
    return text


def _train(env: Environment) -> Resource:
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
        manifest=pytorchjob_manifest(),
        retry_strategy=m.RetryStrategy(limit=m.IntOrString(root=2), retry_policy="OnFailure"),
    )


def _training_result(env: Environment) -> Script:
    """Read back the version training registered; its run URL becomes a workflow output."""
    return Script(
        name="training-result",
        inputs=[Parameter(name="commit")],
        outputs=[
            Parameter(name=key, global_name=key, value_from=m.ValueFrom(path=f"/tmp/outputs/{key}"))
            for key in ("run-id", "model-version", "mlflow-run-url")
        ],
        image=_image(env.registry, images.TRAINER, "{{inputs.parameters.commit}}"),
        command=["python"],
        source=steps.script_source(
            steps.training_result,
            {
                "model_name": "MODEL_NAME",
                "commit": "COMMIT",
                "mlflow_tracking_uri": "MLFLOW_TRACKING_URI",
                "mlflow_ui_url": "MLFLOW_UI_URL",
                "output_dir": "OUTPUT_DIR",
            },
        ),
        env=[
            Env(name="MODEL_NAME", value="{{workflow.parameters.model-name}}"),
            Env(name="COMMIT", value="{{inputs.parameters.commit}}"),
            Env(name="MLFLOW_TRACKING_URI", value=MLFLOW_TRACKING_URI),
            Env(name="MLFLOW_UI_URL", value=env.mlflow_ui_url),
            Env(name="OUTPUT_DIR", value="/tmp/outputs"),
            Env(name="HOME", value="/tmp"),
        ],
        resources=_resources("250m", "512Mi"),
        pod_security_context=_image_user(),
        security_context=_restricted(),
        volume_mounts=[_TMP],
    )


# --- steps 3 and 4: evaluate, promote ----------------------------------------------------------


def _evaluate(env: Environment) -> Container:
    """The gate: a non-zero exit (threshold missed) fails the step and stops the chain."""
    values = refs()
    return Container(
        name="evaluate",
        inputs=[Parameter(name="commit"), Parameter(name="model-version")],
        image=_image(env.registry, images.TRAINER, "{{inputs.parameters.commit}}"),
        command=[
            "python",
            "-m",
            trainer_command.EVALUATE_MODULE,
            *trainer_command.evaluate_args(values, model_version="{{inputs.parameters.model-version}}"),
        ],
        env=[
            Env(name="MLFLOW_TRACKING_URI", value=MLFLOW_TRACKING_URI),
            Env(name="HOME", value="/tmp"),
            Env(name="HF_HOME", value="/tmp/huggingface"),
        ],
        # the held-out data and the model weights are read with the trainer's IRSA role
        service_account_name="trainer",
        tolerations=[GPU_TOLERATION],
        affinity=_gpu_affinity(),
        resources=_resources("4", "32Gi", gpus="1"),
        pod_security_context=_image_user(),
        security_context=_restricted(),
        volume_mounts=[_TMP],
    )


def _promote(env: Environment) -> Container:
    """Commit the new version to the target environment's model version file (git-bot image).

    The image's entrypoint clones the repository with the token mounted from the Secret
    git-bot-token and runs `mlops promote ... --automated`; the arguments are the flags.
    """
    values = refs()
    return Container(
        name="promote",
        inputs=[Parameter(name="commit"), Parameter(name="model-version")],
        image=_image(env.registry, images.GIT_BOT, "{{inputs.parameters.commit}}"),
        args=trainer_command.promote_args(
            values, model_version="{{inputs.parameters.model-version}}", workflow="{{workflow.name}}"
        ),
        env=[
            Env(name="GIT_REPO_URL", value=GIT_REPOSITORY),
            Env(name="GIT_TOKEN_FILE", value=f"{_GIT_TOKEN_DIR}/token"),
            Env(name="MLFLOW_TRACKING_URI", value=MLFLOW_TRACKING_URI),
            # The cluster's MLflow hands out `mlflow-artifacts:/` sources; promote writes the S3
            # location behind them into weightsUri, the path vLLM's init container copies from.
            Env(name="MLFLOW_ARTIFACTS_DESTINATION", value=f"s3://{env.bucket('mlflow-artifacts')}"),
            # git config --global writes here: the root filesystem is read-only
            Env(name="HOME", value="/tmp"),
        ],
        service_account_name="git-bot",
        resources=_resources("250m", "512Mi"),
        pod_security_context=_image_user(),
        security_context=_restricted(),
        volume_mounts=[_TMP, m.VolumeMount(name="git-bot-token", mount_path=_GIT_TOKEN_DIR, read_only=True)],
        volumes=[
            m.Volume(
                name="git-bot-token",
                secret=m.SecretVolumeSource(
                    secret_name=GIT_TOKEN_SECRET, items=[m.KeyToPath(key="token", path="token")]
                ),
            )
        ],
    )


def _report() -> Script:
    """Exit handler: print status, failed steps and the MLflow run link, whatever happened."""
    return Script(
        name="report",
        image=images.PYTHON,
        command=["python"],
        source=steps.script_source(
            steps.report_outcome,
            {
                "workflow": "WORKFLOW",
                "status": "STATUS",
                "failures": "FAILURES",
                "mlflow_run_url": "MLFLOW_RUN_URL",
            },
        ),
        env=[
            Env(name="WORKFLOW", value="{{workflow.name}}"),
            Env(name="STATUS", value="{{workflow.status}}"),
            Env(name="FAILURES", value="{{workflow.failures}}"),
            # empty when training never finished: the global output then does not exist
            Env(name="MLFLOW_RUN_URL", value='{{=workflow?.outputs?.parameters?.["mlflow-run-url"] ?? ""}}'),
        ],
        resources=_resources("100m", "128Mi"),
        security_context=_restricted(),
        volume_mounts=[_TMP],
    )


def build(env: Environment = BASE, repo: Path = REPO_ROOT) -> WorkflowTemplate:
    """Return the `train-and-promote` WorkflowTemplate with `env`'s platform settings."""
    commit = "{{tasks.resolve-commit.outputs.result}}"
    with WorkflowTemplate(
        name=NAME,
        namespace=NAMESPACE,
        labels={"app.kubernetes.io/part-of": NAME},
        annotations={
            # the CRD comes with the Argo Workflows chart, another Application (MLOPS022)
            "argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true",
            "workflows.argoproj.io/description": (
                "Build the trainer, fine-tune a model in a PyTorchJob, gate it on held-out "
                "perplexity, and promote it by a commit to this repository."
            ),
        },
        workflow_metadata=m.WorkflowMetadata(
            labels={"mlops.platform/model": "{{workflow.parameters.model-name}}"},
            annotations={
                "workflows.argoproj.io/title": (
                    "train {{workflow.parameters.model-name}} → {{workflow.parameters.target-env}}"
                ),
                "workflows.argoproj.io/description": (
                    f"[MLflow registry: {{{{workflow.parameters.model-name}}}}]({env.mlflow_ui_url}/#/models/"
                    "{{workflow.parameters.model-name}}) · the run's link is the output `mlflow-run-url`"
                ),
            },
        ),
        entrypoint="main",
        on_exit="report",
        service_account_name=NAME,
        arguments=[
            Parameter(
                name=p.name, value=p.default, description=p.description, enum=list(p.enum) if p.enum else None
            )
            for p in parameters(env, repo)
        ],
        security_context=m.PodSecurityContext(
            run_as_non_root=True,
            run_as_user=65532,
            run_as_group=65532,
            fs_group=65532,
            seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
        ),
        volumes=[m.Volume(name="tmp", empty_dir=m.EmptyDirVolumeSource())],
        synchronization=m.Synchronization(mutexes=[m.Mutex(name=MUTEX)]),
        active_deadline_seconds=2 * 24 * 3600,
        ttl_strategy=m.TTLStrategy(seconds_after_success=3 * 24 * 3600, seconds_after_failure=7 * 24 * 3600),
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
    ) as template:
        resolve = _resolve_commit()
        _image_digest()
        _image_build()
        train = _train(env)
        training_result = _training_result(env)
        evaluate = _evaluate(env)
        promote = _promote(env)
        _report()
        # declared last so the overlays' patch paths (template and task indices) stay put
        check = _check_parameters(env, repo)
        with DAG(name="main"):
            Task(name="resolve-commit", template=resolve, depends="check-parameters")
            _build_tasks(env, commit)
            Task(
                name="train",
                template=train,
                arguments={
                    "commit": commit,
                    "image-digest": "{{tasks.trainer-image-digest.outputs.result}}",
                },
                depends="trainer-image-digest",
            )
            Task(
                name="training-result",
                template=training_result,
                arguments={"commit": commit},
                depends="train",
            )
            model_version = "{{tasks.training-result.outputs.parameters.model-version}}"
            Task(
                name="evaluate",
                template=evaluate,
                arguments={"commit": commit, "model-version": model_version},
                depends="training-result",
            )
            Task(
                name="promote",
                template=promote,
                arguments={"commit": commit, "model-version": model_version},
                depends=f"evaluate && {_built('build-git-bot-image')}",
            )
            Task(name="check-parameters", template=check)
    return template


workflow_template = build()
"""The base WorkflowTemplate (placeholder account); overlays patch in each environment's values."""
