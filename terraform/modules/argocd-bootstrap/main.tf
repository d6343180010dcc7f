# Argo CD itself, the in-cluster cluster secret that tells the ApplicationSets which
# environment they are in (label `env`) and the AWS facts terraform knows (annotations),
# and the root Application that syncs clusters/<env> from the platform repository.
# After this apply, everything else in the cluster comes from git.

locals {
  namespace = "argocd"

  # The cluster secret is how the ApplicationSets learn where they run: they select on
  # the labels and read the annotations as {{.metadata.annotations.<name>}}. Names are
  # snake_case facts as in gitops-bridge; tests/terraform checks that every name apps/
  # reads is here.
  labels = {
    "argocd.argoproj.io/secret-type" = "cluster"
    env                              = var.env
  }

  base_annotations = {
    platform_repo_url      = var.platform_repo_url
    platform_repo_revision = var.platform_repo_revision
    aws_account_id         = var.aws_account_id
    aws_region             = var.aws_region
    cluster_name           = var.cluster_name
    cluster_endpoint       = var.cluster_endpoint
  }

  annotations = merge(
    local.base_annotations,
    { for sa, arn in var.role_arns : "${replace(sa, "-", "_")}_role_arn" => arn },
    var.extra_annotations,
  )

  replicas = var.high_availability ? 2 : 1

  # What the root Application may create from clusters/<env>: Argo CD's own objects in
  # its namespace, nothing else (tests/terraform renders clusters/<env> against this).
  root_kinds = ["AppProject", "ApplicationSet", "Application"]

  # Helm charts served from OCI registries; Argo CD needs a repository entry with
  # enableOCI before an Application can name them (apps/upstream-charts.yaml: Karpenter).
  oci_chart_repositories = {
    karpenter = "public.ecr.aws/karpenter"
  }
}

resource "helm_release" "argocd" {
  name             = "argocd"
  namespace        = local.namespace
  create_namespace = true
  repository       = "https://argoproj.github.io/argo-helm"
  chart            = "argo-cd"
  version          = var.chart_version
  timeout          = 900
  wait             = true

  values = [yamlencode({
    global = {
      # Argo CD runs on the system node group, never on Karpenter capacity it manages.
      nodeSelector = { "mlops.platform/node-group" = "system" }
    }
    configs = {
      cm = {
        "application.resourceTrackingMethod" = "annotation"
        # Reached as https://argocd.<domain> through the front door (base/frontdoor); the
        # identity provider redirects back to <url>/auth/callback.
        url = "https://argocd.${var.domain}"
        # One identity provider, no Dex: a public client with PKCE, so no client secret
        # exists to leak or rotate (argo-cd docs/operator-manual/user-management, oidc.config).
        "oidc.config" = yamlencode({
          name                     = "SSO"
          issuer                   = var.sso.issuer
          clientID                 = var.sso.argocd_client_id
          enablePKCEAuthentication = true
          # The groups arrive in the claim the provider uses (docs/access.md, per provider);
          # a provider without a groups scope (Entra ID, Cognito) may refuse an unknown one.
          requestedScopes        = concat(["openid", "profile", "email"], compact([var.sso.groups_scope]))
          requestedIDTokenClaims = { (var.sso.groups_claim) = { essential = true } }
        })
        # People sign in through the identity provider only; break-glass is kubectl with
        # the cluster-admin role terraform grants (docs/access.md).
        "admin.enabled"           = false
        "users.anonymous.enabled" = false
        "exec.enabled"            = false
      }
      params = {
        # TLS ends at the ALB (IngressClassParams frontdoor); argocd-server serves HTTP behind it.
        "server.insecure" = true
      }
      rbac = {
        "policy.csv"     = file("${path.module}/rbac-policy.csv")
        "policy.default" = ""
        # The claims whose values rbac-policy.csv's `g,` lines match.
        scopes = "[${var.sso.groups_claim}]"
      }
    }
    controller     = { replicas = 1 }
    server         = { replicas = local.replicas }
    repoServer     = { replicas = local.replicas }
    applicationSet = { replicas = local.replicas }
    redis-ha       = { enabled = var.high_availability }
  })]
}

resource "kubernetes_secret_v1" "in_cluster" {
  metadata {
    name        = "in-cluster"
    namespace   = local.namespace
    labels      = local.labels
    annotations = local.annotations
  }

  data = {
    name   = "in-cluster"
    server = "https://kubernetes.default.svc"
    config = jsonencode({ tlsClientConfig = { insecure = false } })
  }

  depends_on = [helm_release.argocd]
}

resource "kubernetes_secret_v1" "oci_chart_repository" {
  for_each = local.oci_chart_repositories

  metadata {
    name      = "repo-${each.key}"
    namespace = local.namespace
    labels = {
      "argocd.argoproj.io/secret-type" = "repository"
    }
  }

  data = {
    name      = each.key
    url       = each.value
    type      = "helm"
    enableOCI = "true"
  }

  depends_on = [helm_release.argocd]
}

resource "helm_release" "root" {
  name       = "argocd-root"
  namespace  = local.namespace
  repository = "https://argoproj.github.io/argo-helm"
  chart      = "argocd-apps"
  version    = var.apps_chart_version

  values = [yamlencode({
    projects = {
      bootstrap = {
        namespace   = local.namespace
        description = "The root Application only: it may create Argo CD's own objects from clusters/${var.env}"
        sourceRepos = [var.platform_repo_url]
        destinations = [
          { server = "https://kubernetes.default.svc", namespace = local.namespace },
        ]
        clusterResourceWhitelist   = []
        namespaceResourceWhitelist = [for kind in local.root_kinds : { group = "argoproj.io", kind = kind }]
      }
    }
    applications = {
      root = {
        namespace = local.namespace
        project   = "bootstrap"
        source = {
          repoURL        = var.platform_repo_url
          targetRevision = var.platform_repo_revision
          path           = "clusters/${var.env}"
        }
        destination = {
          server    = "https://kubernetes.default.svc"
          namespace = local.namespace
        }
        syncPolicy = {
          automated   = { prune = true, selfHeal = true }
          syncOptions = ["ServerSideApply=true"]
        }
      }
    }
  })]

  depends_on = [kubernetes_secret_v1.in_cluster, kubernetes_secret_v1.oci_chart_repository]
}
