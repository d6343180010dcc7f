"""The policies' catalogue: each id's one-line fix hint, the waiver annotation, and a violation.

The table of what each policy checks is mlops.validate.policies' docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

EXEMPT_PREFIX = "policy.mlops.platform/exempt-"
"""Annotation key prefix that waives a policy for a workload: `...exempt-MLOPS004: "<reason>"`."""

EXEMPTABLE = ("MLOPS004", "MLOPS005", "MLOPS006")

HINTS = {
    "MLOPS001": "set resources.requests.cpu, resources.requests.memory and resources.limits.memory",
    "MLOPS002": "use an explicit version tag or a digest, never :latest or no tag",
    "MLOPS003": "pin prod images by @sha256 digest, a vX.Y.Z tag or a 40-hex git sha tag",
    "MLOPS004": 'set securityContext.runAsNonRoot: true, or annotate exempt-MLOPS004: "<reason>"',
    "MLOPS005": "set securityContext.readOnlyRootFilesystem: true (mount an emptyDir for scratch), "
    'or annotate exempt-MLOPS005: "<reason>"',
    "MLOPS006": 'set securityContext.capabilities.drop: [ALL], or annotate exempt-MLOPS006: "<reason>"',
    "MLOPS007": "add toleration {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}",
    "MLOPS008": "set spec.limits (e.g. cpu, memory, nvidia.com/gpu) so the NodePool cannot grow unbounded",
    "MLOPS009": "set syncPolicy.automated {prune: true, selfHeal: true} and a project other than default",
    # ApplicationSet coverage (mlops.validate.appsets)
    "MLOPS010": "fix the ApplicationSet's path (or the generator) so it names an overlay folder that builds",
    "MLOPS011": "add the folder to an ApplicationSet's git generator, or delete the unused overlay",
    "MLOPS012": "give each generated Application a name unique in its cluster (e.g. add the component)",
    # Cluster behaviour: what the kubelet, the scheduler and the controllers do with a manifest
    "MLOPS013": "add the nvidia-device-plugin chart for this environment (apps/upstream-charts.yaml)",
    "MLOPS014": "run as the image's user (securityContext.runAsUser), or set env USER, HOME and the "
    "cache dirs to writable mounts",
    "MLOPS015": "raise resources.limits.ephemeral-storage to cover the emptyDirs, or shrink their sizeLimit",
    "MLOPS016": "grant the ServiceAccount's role (terraform/modules/workload-roles) s3 write and KMS "
    "on the artifact bucket (the Argo Server's: s3 read and kms:Decrypt)",
    "MLOPS017": "make the hook a Sync hook in the workloads' wave with activeDeadlineSeconds "
    "(never PostSync)",
    "MLOPS018": "set spec.progressDeadlineSeconds above the startup probe budget plus node launch "
    "and weight copy",
    "MLOPS019": "drop ttlSecondsAfterFinished: BeforeHookCreation removes the failed Job at the next sync",
    # Delivery: what a first sync and a year of operation need (issue 13)
    "MLOPS020": "drop the sync-wave from the ApplicationSet's template; order comes from retries "
    "and SkipDryRunOnMissingResource (apps/README.md)",
    "MLOPS021": "set syncPolicy.retry {limit: -1, backoff: {duration, factor, maxDuration}}",
    "MLOPS022": "add SkipDryRunOnMissingResource=true (annotation argocd.argoproj.io/sync-options on "
    "the resource, or syncPolicy.syncOptions of a chart's Application)",
    "MLOPS023": "use an image .github/workflows/images.yaml builds (mlops/<image>, tag = 40-hex commit "
    "or X.Y.Z release; prod: @sha256 digest or release) from this environment's registry",
    "MLOPS024": "pin amiSelectorTerms alias to a release (al2023@vYYYYMMDD); bump it in a pull request",
    "MLOPS025": "set spec.template.spec.expireAfter: Never and replace GPU nodes by AMI drift in the "
    "maintenance window (docs/first-apply.md)",
    "MLOPS026": 'add a budget {nodes: "0", schedule: ..., duration: ...} for business hours',
    "MLOPS027": "give release tags (X.Y.Z) their own lifecycle rule, before any rule that counts "
    "commit or cache tags",
    "MLOPS028": "push build caches to a MUTABLE cache repository (terraform modules/ecr), not to the "
    "tag-immutable image repository",
    "MLOPS029": "set kubernetes_version to a version in EKS standard support and "
    "mlops.validate.schemas.KUBERNETES_VERSION to the same",
    # Terraform / AWS first apply (issue 24)
    "MLOPS110": "tag in-cluster builds wf-<commit> (workflows/kubernetes.py built_tag), apart from CI's "
    "commit and X.Y.Z tags",
    # Supply chain (issue 27)
    "MLOPS140": "pull it through the ECR pull-through cache: <account>.dkr.ecr.<region>.amazonaws.com/"
    "<docker-hub|ghcr|quay|k8s|ecr-public>/<repository> (terraform/modules/pull-through-cache), "
    "pinned by digest (docs/dependencies.md)",
}


@dataclass(frozen=True)
class Violation:
    """One policy violation: the field, what is wrong, and the policy id."""

    field: str
    message: str
    policy_id: str

    @property
    def hint(self) -> str:
        """The one-line fix hint of the policy."""
        return HINTS[self.policy_id]
