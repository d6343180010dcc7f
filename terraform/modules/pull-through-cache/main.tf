# ECR pull-through cache rules: the cluster pulls third-party images from this account's
# registry as <registry>/<prefix>/<upstream repository>, and ECR fetches each from its
# public registry once, so no node depends on a rate-limited public registry (Docker Hub
# allows 10 anonymous pulls per hour per IP, and dev's nodes share one NAT address).
# Docker Hub and ghcr.io require credentials: a Secrets Manager secret whose name starts
# with ecr-pullthroughcache/ (AWS ECR user guide, "Creating a pull through cache rule"),
# created by hand (docs/dependencies.md), never by terraform, so no token is in the state.
# Quay, registry.k8s.io and ECR Public need none.

locals {
  # prefix => upstream registry URL (AWS CLI create-pull-through-cache-rule, --upstream-registry-url).
  upstreams = {
    "docker-hub" = "registry-1.docker.io"
    "ghcr"       = "ghcr.io"
    "quay"       = "quay.io"
    "k8s"        = "registry.k8s.io"
    "ecr-public" = "public.ecr.aws"
  }
  # prefix => Secrets Manager secret name of the registries that require credentials.
  credentials = {
    "docker-hub" = var.docker_hub_secret_name
    "ghcr"       = var.ghcr_secret_name
  }
}

# The secrets exist before the first apply (docs/dependencies.md): a missing one fails the
# plan here, naming the secret, instead of ECR failing every pull later.
data "aws_secretsmanager_secret" "upstream" {
  for_each = local.credentials

  name = each.value
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

resource "aws_ecr_pull_through_cache_rule" "upstream" {
  for_each = local.upstreams

  ecr_repository_prefix = each.key
  upstream_registry_url = each.value
  credential_arn        = try(data.aws_secretsmanager_secret.upstream[each.key].arn, null)
}

# Repositories the cache creates on a first pull: scanned like mlops/*, encrypted, and
# tags mutable (an upstream tag can move; prod pins by digest, MLOPS140).
resource "aws_ecr_repository_creation_template" "cache" {
  for_each = local.upstreams

  prefix               = each.key
  description          = "Pull-through cache of ${each.value}"
  applied_for          = ["PULL_THROUGH_CACHE"]
  image_tag_mutability = "MUTABLE"

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }

  resource_tags = var.tags
}

# A first pull of an image creates its repository and imports it: the node roles that
# pull need both actions on the cache's repositories (AWS ECR user guide, "IAM permissions
# required to sync an upstream registry"); AmazonEC2ContainerRegistryPullOnly has neither.
resource "aws_iam_role_policy" "pull_through" {
  for_each = toset(var.puller_role_names)

  name = "ecr-pull-through-cache"
  role = each.key
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow"
      Action = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
      Resource = [
        for prefix in keys(local.upstreams) :
        "arn:aws:ecr:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:repository/${prefix}/*"
      ]
    }]
  })
}
