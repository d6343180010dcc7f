"""WorkflowTemplate `train-and-promote`: build the trainer, train a PyTorchJob, gate, promote.

Steps, in order (the DAG below and `mlops workflows run-local` share `STEPS`):
  0. check-parameters: every parameter against its pattern (parameters.py); a bad value fails
     the run before anything is built or created;
  1. build: resolve the commit, then build the trainer and git-bot images with rootless BuildKit from
     this repository at that commit (tag wf-<commit>), each skipped when ECR already has the tag;
  2. train: a `kubeflow.org/v1` PyTorchJob created by a resource template, then the version it
     registered (alias `candidate`) read back from MLflow with a link to its run;
  3. evaluate: `python -m trainer.evaluate`, the gate (non-zero exit stops the chain);
  4. promote: `mlops promote --automated` from the git-bot image.
An exit handler reports the outcome (status, failed steps, MLflow run link).

This module assembles the template; the build steps are build_steps.py's, the PyTorchJob
pytorchjob.py's, and what every step shares (security, resources) kubernetes.py's.
"""

from __future__ import annotations

import json
from pathlib import Path

from hera.workflows import DAG, Container, Env, Parameter, Script, Task, WorkflowTemplate
from hera.workflows import models as m
from mlops.conventions.image_refs import through_cache

from . import build_steps, pytorchjob, steps, trainer_command
from . import container_images as images
from .environments import BASE, GIT_REPOSITORY, Environment
from .kubernetes import (
    GIT_TOKEN_SECRET,
    GPU_TOLERATION,
    MLFLOW_GIT_BOT_SECRET,
    MLFLOW_TRACKING_URI,
    MLFLOW_TRAINER_SECRET,
    NAMESPACE,
    TMP_MOUNT,
    gpu_affinity,
    image_ref,
    image_user,
    mlflow_login,
    resources,
    restricted,
)
from .parameters import REPO_ROOT, parameters, patterns, refs
from .script_template import script_template

NAME = "train-and-promote"
STEPS: tuple[str, ...] = ("build", "train", "evaluate", "promote")
"""The chain a run walks through; `run-local` runs the same names in the same order."""

# Runs of one model take a mutex: the trainer moves the model's `candidate` alias, and the
# step after training reads it back.
MUTEX = "train-and-promote-{{workflow.parameters.model-name}}"

_GIT_TOKEN_DIR = "/var/run/secrets/git-bot"


def _check_parameters(env: Environment, repo: Path) -> Script:
    """The run's first step: every parameter must match its pattern, or nothing else runs."""
    return script_template(
        "check-parameters",
        steps.check_parameters,
        image=through_cache(env.registry, images.PYTHON),
        arguments={"patterns": ("PATTERNS", json.dumps(patterns(repo), sort_keys=True))},
        # an env value is one string whatever it holds: Argo escapes it into the pod spec
        extra_env=[Env(name=steps.parameter_variable(p.name), value=p.ref) for p in parameters(env, repo)],
    )


def _training_result(env: Environment) -> Script:
    """Read back the version training registered; its run URL becomes a workflow output."""
    return script_template(
        "training-result",
        steps.training_result,
        arguments={
            "model_name": ("MODEL_NAME", "{{workflow.parameters.model-name}}"),
            "commit": ("COMMIT", "{{inputs.parameters.commit}}"),
            "mlflow_tracking_uri": ("MLFLOW_TRACKING_URI", MLFLOW_TRACKING_URI),
            "mlflow_ui_url": ("MLFLOW_UI_URL", env.mlflow_ui_url),
            "output_dir": ("OUTPUT_DIR", "/tmp/outputs"),
        },
        extra_env=[Env(name="HOME", value="/tmp"), *mlflow_login(MLFLOW_TRAINER_SECRET)],
        image=image_ref(env.registry, images.TRAINER, "{{inputs.parameters.commit}}"),
        cpu="250m",
        memory="512Mi",
        inputs=[Parameter(name="commit")],
        outputs=[
            Parameter(name=key, global_name=key, value_from=m.ValueFrom(path=f"/tmp/outputs/{key}"))
            for key in ("run-id", "model-version", "mlflow-run-url")
        ],
        pod_security_context=image_user(),
    )


def _evaluate(env: Environment, repo: Path) -> Container:
    """The gate: a non-zero exit (threshold missed) fails the step and stops the chain."""
    values = refs(repo)
    return Container(
        name="evaluate",
        inputs=[Parameter(name="commit"), Parameter(name="model-version")],
        image=image_ref(env.registry, images.TRAINER, "{{inputs.parameters.commit}}"),
        command=[
            "python",
            "-m",
            trainer_command.EVALUATE_MODULE,
            *trainer_command.evaluate_args(values, model_version="{{inputs.parameters.model-version}}"),
        ],
        env=[
            Env(name="MLFLOW_TRACKING_URI", value=MLFLOW_TRACKING_URI),
            # the gate tags are the trainer identity's to write (images/mlflow/registry_access)
            *mlflow_login(MLFLOW_TRAINER_SECRET),
            Env(name="HOME", value="/tmp"),
            Env(name="HF_HOME", value="/tmp/huggingface"),
        ],
        # the held-out data and the model weights are read with the trainer's Pod Identity role
        service_account_name="trainer",
        tolerations=[GPU_TOLERATION],
        affinity=gpu_affinity(),
        resources=resources("4", "32Gi", gpus="1"),
        pod_security_context=image_user(),
        security_context=restricted(),
        volume_mounts=[TMP_MOUNT],
    )


def _promote(env: Environment, repo: Path) -> Container:
    """Commit the new version to the target environment's model version file (git-bot image).

    The image's entrypoint clones the repository with the token mounted from the Secret
    git-bot-token and runs `mlops promote ... --automated`; the arguments are the flags.
    """
    values = refs(repo)
    return Container(
        name="promote",
        inputs=[Parameter(name="commit"), Parameter(name="model-version"), Parameter(name="image-digest")],
        # by digest (the git-bot-image-digest task): this step holds the git token
        image=f"{env.registry}/{images.GIT_BOT.repository}@{{{{inputs.parameters.image-digest}}}}",
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
            # only the promotion identity moves the environment's alias (images/mlflow/registry_access)
            *mlflow_login(MLFLOW_GIT_BOT_SECRET),
            # git config --global writes here: the root filesystem is read-only
            Env(name="HOME", value="/tmp"),
        ],
        service_account_name="git-bot",
        resources=resources("250m", "512Mi"),
        pod_security_context=image_user(),
        security_context=restricted(),
        volume_mounts=[
            TMP_MOUNT,
            m.VolumeMount(name="git-bot-token", mount_path=_GIT_TOKEN_DIR, read_only=True),
        ],
        volumes=[
            m.Volume(
                name="git-bot-token",
                secret=m.SecretVolumeSource(
                    secret_name=GIT_TOKEN_SECRET, items=[m.KeyToPath(key="token", path="token")]
                ),
            )
        ],
    )


def _report(env: Environment) -> Script:
    """Exit handler: print status, failed steps and the MLflow run link, whatever happened."""
    return script_template(
        "report",
        steps.report_outcome,
        image=through_cache(env.registry, images.PYTHON),
        arguments={
            "workflow": ("WORKFLOW", "{{workflow.name}}"),
            "status": ("STATUS", "{{workflow.status}}"),
            "failures": ("FAILURES", "{{workflow.failures}}"),
            # empty when training never finished: the global output then does not exist
            "mlflow_run_url": (
                "MLFLOW_RUN_URL",
                '{{=workflow?.outputs?.parameters?.["mlflow-run-url"] ?? ""}}',
            ),
        },
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
        resolve = build_steps.resolve_commit(env)
        build_steps.image_digest(env)
        build_steps.image_build(env)
        train = pytorchjob.train(env, part_of=NAME, repo=repo)
        training_result = _training_result(env)
        evaluate = _evaluate(env, repo)
        promote = _promote(env, repo)
        _report(env)
        # declared last so the overlays' patch paths (template and task indices) stay put
        check = _check_parameters(env, repo)
        with DAG(name="main"):
            Task(name="resolve-commit", template=resolve, depends="check-parameters")
            build_steps.build_tasks(env, commit)
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
                arguments={
                    "commit": commit,
                    "model-version": model_version,
                    "image-digest": "{{tasks.git-bot-image-digest.outputs.result}}",
                },
                depends="evaluate && git-bot-image-digest",
            )
            Task(name="check-parameters", template=check)
    return template


def __getattr__(name: str) -> WorkflowTemplate:
    """`workflow_template`: the base object the overlays patch, built on first use.

    Not at import: an installed CLI with no checkout beside it imports this module (mlops
    validate's compile check) and compiles against the repository it is given.
    """
    if name == "workflow_template":
        return build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
