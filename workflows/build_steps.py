"""Build steps of `train-and-promote`: resolve the commit, then build this repository's images.

Each image (trainer, git-bot) is built with rootless BuildKit from this repository at the
resolved commit and tagged `wf-<commit>` (CI's tags are the bare commit and X.Y.Z, so the
two never push the same immutable tag), unless ECR already holds that tag.
"""

from __future__ import annotations

from hera.workflows import Container, Env, GitArtifact, Parameter, SecretEnv, Task
from hera.workflows import models as m
from mlops.image_refs import through_cache

from . import container_images as images
from .environments import GIT_REPOSITORY, REGION, Environment
from .kubernetes import GIT_TOKEN_SECRET, TMP_MOUNT, built_tag, image_ref, resources, restricted

_WORKSPACE = "/workspace"


def resolve_commit(env: Environment) -> Container:
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
        image=through_cache(env.registry, images.GIT),
        command=["sh", "-c", script],
        env=[
            Env(name="REPOSITORY", value=GIT_REPOSITORY),
            Env(name="REVISION", value="{{workflow.parameters.git-revision}}"),
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


def ecr_login(env: Environment) -> m.UserContainer:
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
        image=through_cache(env.registry, images.AWS_CLI),
        command=["sh", "-c", script],
        env=[
            m.EnvVar(name="REGION", value=REGION),
            m.EnvVar(name="DESTINATION", value="{{inputs.parameters.destination}}"),
            m.EnvVar(name="DOCKER_CONFIG", value=_DOCKER_CONFIG),
            m.EnvVar(name="HOME", value="/tmp"),
        ],
        resources=resources("100m", "256Mi"),
        security_context=restricted(),
        volume_mounts=[TMP_MOUNT, m.VolumeMount(name="docker-config", mount_path=_DOCKER_CONFIG)],
    )


def image_build(env: Environment) -> Container:
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
        image=through_cache(env.registry, images.BUILDKIT),
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
        init_containers=[ecr_login(env)],
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
        resources=resources("2", "8Gi"),
        security_context=m.SecurityContext(
            run_as_non_root=True,
            run_as_user=1000,
            run_as_group=1000,
            read_only_root_filesystem=False,
            seccomp_profile=m.SeccompProfile(type="Unconfined"),
            app_armor_profile=m.AppArmorProfile(type="Unconfined"),
        ),
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
    # the trainer records the digest it ran as (model version tag image_digest)
    digest = Task(
        name="trainer-image-digest",
        template="image-digest",
        arguments={"repository": images.TRAINER.repository, "tag": built_tag(commit), "require": "true"},
        depends=built("build-trainer-image"),
    )
    tasks[digest.name] = digest
    return tasks


def built(task: str) -> str:
    """A `depends` clause: the build task ran and succeeded, or was skipped (the image existed)."""
    return f"({task}.Succeeded || {task}.Skipped)"
