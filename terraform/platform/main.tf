# The AWS side of one environment: the one root module both environments apply first.
# What differs per environment lives in envs/<env>/ (terraform.tfvars: sizes and ids;
# backend.s3.tfbackend: where the state is); see terraform/README.md for the commands.
# Nothing here talks to the Kubernetes API: Argo CD goes in with the second root,
# terraform/argocd, from a place that reaches the API endpoint (prod's is private), and
# reads what it needs from this root's `argocd_bootstrap` output.

locals {
  name         = "mlops-${var.env}"
  cluster_name = local.name

  tags = {
    project     = "mlops-platform"
    environment = var.env
    managed-by  = "terraform"
    repository  = var.platform_repo_url
  }

  # Images built from images/<image>; ECR repositories are mlops/<image>.
  images = ["trainer", "gateway", "git-bot", "mlflow"]
}

module "network" {
  source = "../modules/network"

  name                    = local.name
  cluster_name            = local.cluster_name
  cidr                    = var.vpc_cidr
  azs                     = var.azs
  single_nat_gateway      = var.single_nat_gateway
  flow_log_retention_days = var.log_retention_days
  tags                    = local.tags
}

module "eks" {
  source = "../modules/eks"

  cluster_name           = local.cluster_name
  kubernetes_version     = var.kubernetes_version
  addon_versions         = var.eks_addon_versions
  subnet_ids             = module.network.private_subnet_ids
  endpoint_public_access = var.cluster_endpoint_public_access
  public_access_cidrs    = var.cluster_api_access.public_cidrs
  # 443 to the private endpoint for the VPN / peered ranges and in-VPC runners.
  private_access_cidrs              = var.cluster_api_access.private_cidrs
  private_access_security_group_ids = var.cluster_api_access.private_security_group_ids
  admin_principal_arns              = var.cluster_admin_principal_arns
  system_node_group                 = var.system_node_group
  log_retention_days                = var.log_retention_days
  tags                              = local.tags
}

module "karpenter" {
  source = "../modules/karpenter"

  cluster_name    = module.eks.cluster_name
  name_prefix     = local.name
  namespace       = "karpenter"
  service_account = "karpenter"
  tags            = local.tags

  create_spot_service_linked_role = var.create_spot_service_linked_role
}

module "data" {
  source = "../modules/data"

  name_prefix                        = local.name
  noncurrent_version_expiration_days = var.data_noncurrent_version_expiration_days
  argo_artifacts_expiration_days     = var.argo_artifacts_expiration_days
  access_log_expiration_days         = var.log_retention_days
  force_destroy                      = var.data_force_destroy
  tags                               = local.tags
}

module "mlflow_db" {
  source = "../modules/mlflow-db"

  name_prefix               = local.name
  env                       = var.env
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.eks.cluster_security_group_id]
  engine_version            = var.db_engine_version
  instance_class            = var.db_instance_class
  allocated_storage_gib     = var.db_allocated_storage_gib
  max_allocated_storage_gib = var.db_max_allocated_storage_gib
  multi_az                  = var.db_multi_az
  deletion_protection       = var.db_deletion_protection
  backup_retention_days     = var.db_backup_retention_days
  password_version          = var.db_password_version
  tags                      = local.tags
}

module "ecr" {
  source = "../modules/ecr"

  images                   = local.images
  name_prefix              = local.name
  untagged_expiration_days = 7
  tagged_images_kept       = var.ecr_tagged_images_kept
  release_images_kept      = var.ecr_release_images_kept
  replicate_to_accounts    = var.ecr_replicate_to_accounts
  replicate_from_accounts  = var.ecr_replicate_from_accounts
  tags                     = local.tags
}

# Third-party images come through this account's registry (<registry>/<prefix>/<repo>),
# never straight from a public registry (docs/dependencies.md; mlops validate MLOPS140).
module "pull_through_cache" {
  source = "../modules/pull-through-cache"

  kms_key_arn       = module.ecr.kms_key_arn
  puller_role_names = [module.eks.system_node_role_name, module.karpenter.node_role_name]
  tags              = local.tags
}

# The front door: the wildcard certificate for *.<domain> and the roles of the controllers
# that turn Ingresses into the environment's ALB and DNS records (docs/access.md).
module "ingress" {
  source = "../modules/ingress"

  name_prefix  = local.name
  cluster_name = module.eks.cluster_name
  domain       = var.domain
  tags         = local.tags
}

# Container logs to CloudWatch (Fluent Bit), per concern, with the environment's retention.
module "container_logs" {
  source = "../modules/container-logs"

  env            = var.env
  name_prefix    = local.name
  cluster_name   = module.eks.cluster_name
  retention_days = var.container_log_retention_days
  tags           = local.tags
}

module "workload_roles" {
  source = "../modules/workload-roles"

  name_prefix      = local.name
  env              = var.env
  cluster_name     = module.eks.cluster_name
  bucket_arns      = module.data.bucket_arns
  data_kms_key_arn = module.data.kms_key_arn
  # the image builds push images and their caches
  ecr_repository_arns = merge(module.ecr.repository_arns, { for image, arn in module.ecr.cache_repository_arns : "${image}-cache" => arn })
  secret_kms_key_arns = [module.mlflow_db.kms_key_arn]
  tags                = local.tags
}
