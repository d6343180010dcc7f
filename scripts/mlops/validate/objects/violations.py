"""The policies' catalogue: each id's one-line fix hint, the waiver annotation, and a violation.

The table of what each policy checks is mlops.validate.runner.policies' docstring.
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
    # ApplicationSet coverage (mlops.validate.objects.appsets)
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
    "mlops.validate.schema_checks.schemas.KUBERNETES_VERSION to the same",
    # Terraform / AWS first apply (issue 24)
    "MLOPS110": "tag in-cluster builds wf-<commit> (workflows/kubernetes.py built_tag), apart from CI's "
    "commit and X.Y.Z tags",
    # Trust boundaries (issue 23; docs/security.md)
    "MLOPS080": "make the NetworkPolicies (base/platform/networkpolicy-<namespace>.yaml) and the "
    "reachability matrix in docs/security.md say the same edges",
    "MLOPS081": "set spec.conditions: [{namespaces: [...]}] naming each namespace whose ExternalSecrets "
    "the store serves",
    "MLOPS082": "drop the kind from the project's whitelist; RBAC, NetworkPolicies, secret stores (and a "
    "model's secrets) come from a platform project",
    "MLOPS083": "deploy into the privileged namespace from a platform project (platform, platform-*), "
    "or enforce baseline there",
    "MLOPS085": "promote the version (`mlops promote`), which writes weightsDigest from the trainer's "
    "weights_digest tag; keep `none` only while the folder lists the bootstrap component",
    "MLOPS084": "meet the namespace's Pod Security level (RuntimeDefault seccomp/AppArmor, no host "
    "namespaces, hostPath or privileged containers), or run the pod in a namespace of its own that "
    "enforces privileged, reached only by a platform project",
    # Trust boundaries (issue 23, mlops.validate.env_rules.gateway_target)
    "MLOPS130": "keep base/gateway's ServiceMonitor without jobLabel, in namespace gateway, selecting the "
    "Service named gateway (mlops.canary.canary_metrics.GATEWAY_JOB/GATEWAY_NAMESPACE)",
    "MLOPS086": "drop honorLabels, or pin job after the scrape (metricRelabelings: action replace, "
    "targetLabel job, a fixed replacement); write job/namespace only with fixed values not the gateway's",
    # Gateway routing across replicas (issue 26, mlops.validate.env_rules.references)
    "MLOPS131": "fix the routes field as the message says (images/gateway/README.md, Routing table)",
    "MLOPS132": "render the model folder from base/models/vllm, which has the headless Service "
    "<model>-vllm-headless, or route with routing.replicas: service",
    # API rules the schemas miss (mlops.validate.object_rules.api_rules), YAML files, generated files (issue
    # 22)
    "MLOPS040": "write a number with one suffix: cpu 500m or 0.5, memory 6Gi or 6G (not 500mm, 6GB)",
    "MLOPS041": "lower the request or raise the limit so that request <= limit",
    "MLOPS042": "set requests and limits of the extended resource to the same whole number",
    "MLOPS043": "rename (kustomize namePrefix/nameSuffix count): lower-case letters, digits and '-', "
    "within the kind's length limit",
    "MLOPS044": "use label keys/values of at most 63 alphanumerics, '-', '_' or '.' that start and end "
    "alphanumeric",
    "MLOPS045": "make spec.selector select spec.template.metadata.labels",
    "MLOPS046": "name the port in the container's ports, or use the port number",
    "MLOPS047": "name the port in the selected containers' ports, or use the port number",
    "MLOPS048": "keep one of the two keys: merge their values, or move the second where it belongs",
    "MLOPS049": "fix the YAML at that line (indentation, a missing ':' or quote), or save the file as UTF-8",
    "MLOPS050": "run `mlops workflows compile` and commit the generated files",
    # References between objects, ownership, model versions, serving (mlops.validate.env_rules.references,
    # .ownership, .model_versions)
    "MLOPS060": "render the ConfigMap/Secret (or the ExternalSecret that writes it) with that key, "
    "declare it in clusters/external-objects.yaml, or mark the reference optional",
    "MLOPS061": "render the volume's ConfigMap/Secret/PersistentVolumeClaim with those keys, or declare "
    "it in clusters/external-objects.yaml",
    "MLOPS062": "render the ServiceAccount in the pod's namespace, or declare it in "
    "clusters/external-objects.yaml",
    "MLOPS063": "name a SecretStore of the namespace or a ClusterSecretStore this environment renders",
    "MLOPS064": "name a workload (kind and name) rendered in the same namespace",
    "MLOPS065": "name an EC2NodeClass this environment renders",
    "MLOPS066": "make the selector match a pod template's labels in the Service's namespace",
    "MLOPS067": "make the selector (and namespaceSelector) match rendered pods or Services, or declare "
    "a chart's in clusters/external-objects.yaml",
    "MLOPS068": "route to http://<folder>-vllm.models.svc.cluster.local:8000 of a rendered model folder "
    "serving that model (canary: the <model>-canary folder)",
    "MLOPS069": "give each entry kind, namespace, name or labels, madeBy and reason",
    "MLOPS070": "give each object one Application: edit the copied folder's namePrefix (and data.model), "
    "or drop one of the two",
    "MLOPS071": "name the folder's objects after it: namePrefix <folder>-, data.model <folder> "
    "(<model> for <model>-canary)",
    "MLOPS072": "add the kind to the AppProject's resource whitelist (or the namespace to its destinations), "
    "or move the object to an Application whose project permits it",
    "MLOPS073": 'set version to an MLflow version ("7"), weightsUri to s3://<this env\'s artifact '
    "bucket>/<experiment>/<run>/artifacts/model/attempt-<id> (the version's source), "
    "mlflowRun to the 32-hex run id, never a <...> placeholder; "
    "`mlops promote` writes all three",
    "MLOPS074": "set nvidia.com/gpu (requests and limits) to SERVE_TENSOR_PARALLEL_SIZE x pipeline size",
    "MLOPS075": "copy the stable folder and change only namePrefix, the canary component and the replicas",
    # First apply and first week on a fresh account (issue 24; mlops.validate.object_rules.fresh_install*)
    "MLOPS100": "leave spec.replicas to the ScaledObject, or pause it at the same count "
    "(autoscaling.keda.sh/paused-replicas; base/models/components/bootstrap)",
    "MLOPS101": "run s5cmd through a shell that fails when nothing arrived (base/models/vllm fetch-weights)",
    "MLOPS102": "add the metrics-server chart for this environment (apps/upstream-charts.yaml), "
    "or scale on another metric",
    "MLOPS103": "set kubeControllerManager, kubeScheduler, kubeEtcd and kubeProxy enabled: false "
    "in the kube-prometheus-stack values (EKS runs them out of reach)",
    "MLOPS104": "add annotation argocd.argoproj.io/sync-options: Delete=false (resources), "
    "syncPolicy.preserveResourcesOnDeletion: true (ApplicationSets)",
    "MLOPS105": "set manualSync: true on the deny window, so the first apply and a fix can be synced "
    "by hand inside it",
    "MLOPS106": "write the field's default explicitly (e.g. action: replace)",
    "MLOPS107": "label the pods mlops.platform/workflow instead (workflows/pytorchjob.py)",
    # Supply chain (issue 27)
    "MLOPS140": "pull it through the ECR pull-through cache: <account>.dkr.ecr.<region>.amazonaws.com/"
    "<docker-hub|ghcr|quay|k8s|ecr-public>/<repository> (terraform/modules/pull-through-cache), "
    "pinned by digest (docs/dependencies.md)",
    "MLOPS141": "name a ServiceAccount the environment renders (or a chart's values create) in the "
    "association (terraform/modules/workload-roles local.service_accounts), or rename it back; pass "
    "the module call's namespace/service_account as a literal, each.*, local.* or var.*",
    "MLOPS142": "associate the pod's ServiceAccount with a role (terraform/modules/workload-roles "
    "local.service_accounts); drop its eks.amazonaws.com/role-arn annotation (docs/dependencies.md, "
    "EKS Pod Identity)",
    "MLOPS143": "append @sha256:<digest> (crane digest <upstream reference>), or list the image with that "
    "command in docs/dependencies.md, Digests to pin",
    # The front door (issue 28; mlops.validate.trust_rules.frontdoor)
    "MLOPS150": "derive every host from terraform/envs/<env>/terraform.tfvars domain as <name>.<domain> "
    "(overlays/<env>/frontdoor/domain.yaml, the chart values), the issuer from sso.issuer and the "
    "groups claim and scope from sso.groups_claim and sso.groups_scope",
    "MLOPS151": "use ingressClassName alb, listen on HTTPS 443, list each host under spec.tls; keep "
    "IngressClassParams frontdoor's group, sslRedirectPort 443 and TLS 1.3 policy (base/frontdoor)",
    "MLOPS153": "list terraform's vpc_cidr and the private ranges routed into the VPC (peering, Direct "
    "Connect) in overlays/<env>/frontdoor/inbound-cidrs.yaml",
    "MLOPS152": "expose it only through an Ingress of base/frontdoor with ALB OIDC auth or a "
    "mlops.platform/sign-in backend that enforces sign-in (docs/access.md)",
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
