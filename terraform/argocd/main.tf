# The second apply of an environment: Argo CD, the in-cluster cluster secret and the root
# Application on clusters/<env>. It runs after terraform/platform, from a place that reaches
# the EKS API (dev: the public endpoint from cluster_api_access.public_cidrs; prod: the
# VPN, or an SSM tunnel through a system node with kubernetes_api_url), and takes every
# value from the platform's state, so the two never disagree.

data "terraform_remote_state" "platform" {
  backend = "s3"
  config = {
    bucket = "mlops-${var.env}-tfstate"
    key    = "envs/${var.env}/terraform.tfstate"
    region = var.aws_region
  }
}

locals {
  platform = data.terraform_remote_state.platform.outputs.argocd_bootstrap
}

module "argocd_bootstrap" {
  source = "../modules/argocd-bootstrap"

  env                    = local.platform.env
  cluster_name           = local.platform.cluster_name
  cluster_endpoint       = local.platform.cluster_endpoint
  aws_account_id         = local.platform.aws_account_id
  aws_region             = local.platform.aws_region
  chart_version          = local.platform.chart_version
  apps_chart_version     = local.platform.apps_chart_version
  high_availability      = local.platform.high_availability
  platform_repo_url      = local.platform.platform_repo_url
  platform_repo_revision = local.platform.platform_repo_revision
  role_arns              = local.platform.role_arns
  extra_annotations      = local.platform.extra_annotations
  domain                 = local.platform.domain
  sso                    = local.platform.sso
}
