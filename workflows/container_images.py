"""The container images the training workflows run, and where this repository's own images live."""

from __future__ import annotations

from dataclasses import dataclass

# Upstream tools, pinned to a release (never `latest`).
# Rootless BuildKit (Kaniko's upstream was archived in June 2025), pinned by digest.
BUILDKIT = (
    "moby/buildkit:v0.33.0-rootless@sha256:80b15f0735e87bab7bf59ec4d695dfb4a7cfb25521cf56dc75d6f256285b63ef"
)
AWS_CLI = "public.ecr.aws/aws-cli/aws-cli:2.36.7"
GIT = "alpine/git:v2.47.2"
PYTHON = "python:3.11.15-slim-trixie"


@dataclass(frozen=True)
class RepositoryImage:
    """An image built from this repository: its ECR repositories and how BuildKit builds it.

    Attributes:
        name: the image name, `mlops/<name>` in ECR.
        context: the build context relative to the repository root.
        dockerfile: the Dockerfile relative to the repository root.
    """

    name: str
    context: str
    dockerfile: str

    @property
    def repository(self) -> str:
        """The ECR repository name (contract: `mlops/<image>`)."""
        return f"mlops/{self.name}"

    @property
    def cache_repository(self) -> str:
        """The ECR repository of its build cache (contract: `mlops-cache/<image>`, tags mutable)."""
        return f"mlops-cache/{self.name}"


# Same contexts as .github/workflows/images.yaml, so a workflow build and a CI build of one
# commit produce the same image (and the workflow skips the build when CI already pushed it).
TRAINER = RepositoryImage(name="trainer", context="images/trainer", dockerfile="images/trainer/Dockerfile")
GIT_BOT = RepositoryImage(name="git-bot", context=".", dockerfile="images/git-bot/Dockerfile")
