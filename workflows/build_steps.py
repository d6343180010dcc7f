"""Build steps of `train-and-promote`: resolve the commit, then build this repository's images.

Each image (trainer, git-bot) is built with rootless BuildKit from this repository at the
resolved commit and tagged `wf-<commit>` (CI's tags are the bare commit and X.Y.Z, so the
two never push the same immutable tag), unless ECR already holds that tag.
"""

from __future__ import annotations

from typing import Any

import yaml
from hera.workflows import Container, Env, Parameter, Resource, SecretEnv, Task
from hera.workflows import models as m
from mlops.conventions.image_refs import through_cache

from . import container_images as images
from .environments import GIT_REPOSITORY, REGION, Environment
from .kubernetes import (
    GIT_TOKEN_SECRET,
    TMP_MOUNT,
    built_tag,
    image_ref,
    resources,
    restricted,
    restricted_manifest,
)

_WORKSPACE = "/workspace"
MAIN_BRANCH = "main"
"""The branch Argo CD follows; only commits it contains are built and promoted."""


def resolve_commit(env: Environment) -> Container:
    """Print the commit `git-revision` names (a 40-hex commit is taken as is), if `main` contains it.

    Every later step builds, trains and promotes this commit with the git-bot's token and the
    registry's trainer identity, so an unmerged branch (or a commit only on one) stops here:
    what runs with those credentials is what review let into `main`.
    """
    script = r"""set -eu
url="$REPOSITORY"
if [ -n "${GIT_TOKEN:-}" ]; then url="https://x-access-token:${GIT_TOKEN}@${REPOSITORY#https://}"; fi
commit=""
case "$REVISION" in
  *[!0-9a-f]*) ;;
  *) if [ "${#REVISION}" -eq 40 ]; then commit="$REVISION"; fi ;;
esac
if [ -z "$commit" ]; then
  commit=$(git ls-remote "$url" "refs/heads/$REVISION" "refs/tags/$REVISION^{}" "refs/tags/$REVISION" \
    | head -n 1 | cut -f 1)
fi
if [ -z "$commit" ]; then echo "no branch or tag $REVISION in $REPOSITORY" >&2; exit 1; fi
history=$(mktemp -d)
# commits and trees only: enough to answer "is it on main?"
git clone -q --bare --filter=blob:none --single-branch --branch "$MAIN_BRANCH" "$url" "$history" 2>/dev/null
if ! git -C "$history" merge-base --is-ancestor "$commit" "refs/heads/$MAIN_BRANCH" 2>/dev/null; then
  echo "commit $commit ($REVISION) is not on $MAIN_BRANCH of $REPOSITORY: the workflow builds and promotes" \
    "only commits merged into $MAIN_BRANCH; merge the pull request, then run it again" >&2
  exit 1
fi
echo "$commit"
"""
    return Container(
        name="resolve-commit",
        image=through_cache(env.registry, images.GIT),
        command=["sh", "-c", script],
        env=[
            Env(name="REPOSITORY", value=GIT_REPOSITORY),
            Env(name="REVISION", value="{{workflow.parameters.git-revision}}"),
            Env(name="MAIN_BRANCH", value=MAIN_BRANCH),
            Env(name="HOME", value="/tmp"),
            SecretEnv(name="GIT_TOKEN", secret_name=GIT_TOKEN_SECRET, secret_key="token", optional=True),
        ],
        resources=resources("100m", "128Mi"),
        security_context=restricted(),
        volume_mounts=[TMP_MOUNT],
    )


def image_digest(env: Environment) -> Container:
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
        image=through_cache(env.registry, images.AWS_CLI),
        command=["sh", "-c", script],
        env=[
            Env(name="REGION", value=REGION),
            Env(name="REPOSITORY", value="{{inputs.parameters.repository}}"),
            Env(name="TAG", value="{{inputs.parameters.tag}}"),
            Env(name="REQUIRE", value="{{inputs.parameters.require}}"),
            Env(name="HOME", value="/tmp"),
        ],
        service_account_name="kaniko",
        resources=resources("100m", "256Mi"),
        security_context=restricted(),
        volume_mounts=[TMP_MOUNT],
    )


_BUILDKIT_STATE = "/home/user/.local/share/buildkit"
_DOCKER_CONFIG = "/home/user/.docker"


BUILD_NAMESPACE = "buildkit"
"""Where image builds run: the one namespace that enforces Pod Security `privileged`, for
rootless BuildKit alone, so `argo` enforces `baseline` for every other workflow pod."""
BUILD_SERVICE_ACCOUNT = "buildkit"
"""The build Job's ServiceAccount in `buildkit` (Pod Identity role mlops-<env>-buildkit: ECR push)."""
BUILD_LABEL = {"app.kubernetes.io/name": "buildkit"}
# batch/v1 Job status counters (Argo's resource templates read the created object's fields:
# argoproj/argo-workflows docs/walk-through/kubernetes-resources.md)
_EXEMPTIONS = {
    # mlops validate's policies the build pod is exempt from, and why
    "policy.mlops.platform/exempt-MLOPS005": "rootlesskit writes its runtime dir and /etc mounts",
    "policy.mlops.platform/exempt-MLOPS006": "newuidmap/newgidmap need their file capabilities "
    "to map the build's user namespace",
}
BUILD_SUCCESS_CONDITION = "status.succeeded > 0"
BUILD_FAILURE_CONDITION = "status.failed > 0"


def _git_checkout(env: Environment) -> dict[str, Any]:
    """Init container: fetch this repository at the commit into the workspace."""
    script = r"""set -eu
url="$REPOSITORY"
if [ -n "${GIT_TOKEN:-}" ]; then url="https://x-access-token:${GIT_TOKEN}@${REPOSITORY#https://}"; fi
git init -q "$WORKSPACE"
git -C "$WORKSPACE" fetch -q --depth 1 "$url" "$COMMIT"
git -C "$WORKSPACE" checkout -q FETCH_HEAD
"""
    return {
        "name": "git-checkout",
        "image": through_cache(env.registry, images.GIT),
        "command": ["sh", "-c", script],
        "env": [
            {"name": "REPOSITORY", "value": GIT_REPOSITORY},
            {"name": "COMMIT", "value": "{{inputs.parameters.commit}}"},
            {"name": "WORKSPACE", "value": _WORKSPACE},
            {"name": "HOME", "value": "/tmp"},
            {
                "name": "GIT_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": GIT_TOKEN_SECRET, "key": "token", "optional": True}},
            },
        ],
        "resources": _resources("100m", "256Mi"),
        "securityContext": restricted_manifest(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "workspace", "mountPath": _WORKSPACE},
        ],
    }


def _ecr_login(env: Environment) -> dict[str, Any]:
    """Init container: write an ECR login for the destination's registry where BuildKit reads it.

    BuildKit, unlike Kaniko, has no ECR credential helper: buildctl reads $DOCKER_CONFIG.
    The token (12 h) comes from the pod's Pod Identity role, the same one that pushes.
    """
    script = r"""set -eu
registry="${DESTINATION%%/*}"
auth=$(printf 'AWS:%s' "$(aws ecr get-login-password --region "$REGION")" | base64 | tr -d '\n')
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$registry" "$auth" > "$DOCKER_CONFIG/config.json"
"""
    return {
        "name": "ecr-login",
        "image": through_cache(env.registry, images.AWS_CLI),
        "command": ["sh", "-c", script],
        "env": [
            {"name": "REGION", "value": REGION},
            {"name": "DESTINATION", "value": "{{inputs.parameters.destination}}"},
            {"name": "DOCKER_CONFIG", "value": _DOCKER_CONFIG},
            {"name": "HOME", "value": "/tmp"},
        ],
        "resources": _resources("100m", "256Mi"),
        "securityContext": restricted_manifest(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "docker-config", "mountPath": _DOCKER_CONFIG},
        ],
    }


def _resources(cpu: str, memory: str) -> dict[str, Any]:
    return resources(cpu, memory).model_dump(mode="json", exclude_none=True)


def image_build_job(env: Environment) -> dict[str, Any]:
    """The batch/v1 Job that builds one image with rootless BuildKit in namespace `buildkit`.

    Rootless BuildKit runs as UID 1000 inside a user namespace it creates with newuidmap
    (setuid), so it keeps privilege escalation and its file capabilities, and needs the
    seccomp and AppArmor profiles unconfined (moby/buildkit examples/kubernetes/job.rootless.yaml,
    docs/rootless.md): Pod Security `baseline` forbids both, so the Job runs in a namespace of
    its own that enforces `privileged` and that only the platform project deploys to.
    The layer cache lives in the image's `mlops-cache/<image>` repository, which is mutable:
    the image repositories are tag-immutable and would refuse a rewritten cache tag.
    """
    cache = "type=registry,ref={{inputs.parameters.cache-ref}}"
    buildkit = {
        "name": "image-build",
        "image": through_cache(env.registry, images.BUILDKIT),
        "command": ["buildctl-daemonless.sh"],
        "args": [
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
        "env": [
            # no nested process sandbox: the pod is the sandbox (docs/rootless.md)
            {"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"},
            {"name": "DOCKER_CONFIG", "value": _DOCKER_CONFIG},
        ],
        "resources": _resources("2", "8Gi"),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "readOnlyRootFilesystem": False,
            "seccompProfile": {"type": "Unconfined"},
            "appArmorProfile": {"type": "Unconfined"},
        },
        "volumeMounts": [
            {"name": "docker-config", "mountPath": _DOCKER_CONFIG, "readOnly": True},
            {"name": "buildkit-state", "mountPath": _BUILDKIT_STATE},
            {"name": "workspace", "mountPath": _WORKSPACE, "readOnly": True},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"generateName": "image-build-", "namespace": BUILD_NAMESPACE, "labels": {**BUILD_LABEL}},
        "spec": {
            # one try: the workflow's build task decides about retries
            "backoffLimit": 0,
            "activeDeadlineSeconds": 7200,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {
                    "labels": {**BUILD_LABEL},
                    "annotations": _EXEMPTIONS,
                },
                "spec": {
                    "serviceAccountName": BUILD_SERVICE_ACCOUNT,
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "runAsGroup": 1000,
                        "fsGroup": 1000,
                    },
                    "initContainers": [_git_checkout(env), _ecr_login(env)],
                    "containers": [buildkit],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {}},
                        {"name": "workspace", "emptyDir": {}},
                        {"name": "docker-config", "emptyDir": {"medium": "Memory"}},
                        {"name": "buildkit-state", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def image_build(env: Environment) -> Resource:
    """Create the build Job in namespace `buildkit` and wait for it to succeed or fail.

    A resource step, not a pod of the workflow: it runs as the workflow's ServiceAccount,
    which may create and read Jobs in `buildkit` only (base/platform/role-buildkit.yaml).
    No owner reference: Kubernetes refuses one across namespaces; the Job's TTL removes it.
    """
    return Resource(
        name="image-build",
        inputs=[
            Parameter(name="destination"),
            Parameter(name="cache-ref"),
            Parameter(name="context"),
            Parameter(name="dockerfile"),
            Parameter(name="commit"),
        ],
        outputs=[Parameter(name="job-name", value_from=m.ValueFrom(json_path="{.metadata.name}"))],
        action="create",
        success_condition=BUILD_SUCCESS_CONDITION,
        failure_condition=BUILD_FAILURE_CONDITION,
        manifest=yaml.safe_dump(image_build_job(env), sort_keys=False, width=1000),
    )


def build_tasks(env: Environment, commit: str) -> dict[str, Task]:
    """Check-then-build tasks for each image of this repository the run needs, by name."""
    tasks: dict[str, Task] = {}
    for image in (images.TRAINER, images.GIT_BOT):
        check = Task(
            name=f"check-{image.name}-image",
            template="image-digest",
            arguments={"repository": image.repository, "tag": built_tag(commit)},
            depends="resolve-commit",
        )
        tasks[check.name] = check
        build = Task(
            name=f"build-{image.name}-image",
            template="image-build",
            arguments={
                "destination": image_ref(env.registry, image, commit),
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
    # the trainer records the digest it ran as (model version tag image_digest); the promote
    # step, which holds the git token, runs the git-bot by digest: a tag pushed again later
    # (or by anyone who can push to ECR) cannot change what it runs
    for image in (images.TRAINER, images.GIT_BOT):
        digest = Task(
            name=f"{image.name}-image-digest",
            template="image-digest",
            arguments={"repository": image.repository, "tag": built_tag(commit), "require": "true"},
            depends=built(f"build-{image.name}-image"),
        )
        tasks[digest.name] = digest
    return tasks


def built(task: str) -> str:
    """A `depends` clause: the build task ran and succeeded, or was skipped (the image existed)."""
    return f"({task}.Succeeded || {task}.Skipped)"
