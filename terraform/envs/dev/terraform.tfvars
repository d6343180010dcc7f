env            = "dev"
aws_account_id = "111122223333"
aws_region     = "us-west-2"
azs            = ["us-west-2a", "us-west-2b", "us-west-2c"]
vpc_cidr       = "10.10.0.0/16"

# One NAT gateway: an AZ outage cuts dev's egress, which dev can live with.
single_nat_gateway = true

kubernetes_version = "1.35"
# EKS add-ons, pinned (never most_recent), for 1.35: kube-proxy and coredns from the EKS
# user guide's version tables (managing-kube-proxy, managing-coredns); the other three as
# published for 1.35 clusters. Confirm before the first apply, and move dev first, with
# `aws eks describe-addon-versions --kubernetes-version 1.35 --addon-name <name>`.
eks_addon_versions = {
  vpc-cni                = "v1.21.1-eksbuild.3"
  kube-proxy             = "v1.35.3-eksbuild.2"
  eks-pod-identity-agent = "v1.3.10-eksbuild.2"
  coredns                = "v1.13.2-eksbuild.4"
  aws-ebs-csi-driver     = "v1.56.0-eksbuild.1"
}

cluster_endpoint_public_access = true
cluster_admin_principal_arns = [
  "arn:aws:iam::111122223333:role/mlops-platform-admin",
  "arn:aws:iam::111122223333:role/mlops-ci-deploy",
]

system_node_group = {
  instance_types = ["m7i.large", "m6i.large"]
  min_size       = 2
  max_size       = 3
  desired_size   = 2
  disk_size_gib  = 50
}

# A fresh account has no Spot service-linked role; false once the account has one (docs/first-apply.md).
create_spot_service_linked_role = true

# Every host name is <name>.dev.mlops.example.com (argocd, workflows, grafana, mlflow, api): the one place
# the domain is set; mlops validate (MLOPS150) holds every Ingress and chart value to it.
domain = "dev.mlops.example.com"
# The identity provider (OIDC): one issuer per environment, and where it puts the groups.
sso = {
  issuer           = "https://login.example.com/oauth2/mlops-dev"
  argocd_client_id = "mlops-dev-argocd"
  # Okta: a `groups` claim and scope with group names. Entra ID: groups_scope = "" (the
  # claim comes from the app's groupMembershipClaims) and object ids, or cloud-only display
  # names, in the three RBAC places. Cognito: groups_claim = "cognito:groups",
  # groups_scope = "". The chart values follow it (MLOPS150; docs/access.md).
  groups_claim = "groups"
  groups_scope = "groups"
}

# Pods' logs in CloudWatch (Fluent Bit); workflow step logs are also archived to S3.
container_log_retention_days = 30
log_retention_days           = 365

data_noncurrent_version_expiration_days = 14
argo_artifacts_expiration_days          = 14
data_force_destroy                      = true

db_engine_version            = "17"
db_instance_class            = "db.t4g.medium"
db_allocated_storage_gib     = 20
db_max_allocated_storage_gib = 100
db_multi_az                  = false
db_deletion_protection       = false
db_backup_retention_days     = 7
db_password_version          = 1

ecr_tagged_images_kept  = 30
ecr_release_images_kept = 50
# CI pushes to dev's registry (the CI account), which replicates mlops/* to prod's.
ecr_replicate_to_accounts   = ["444455556666"]
ecr_replicate_from_accounts = []

argocd_chart_version      = "10.9.6"
argocd_apps_chart_version = "2.0.2"
argocd_high_availability  = false

platform_repo_url      = "https://github.com/example-org/mlops-platform.git"
platform_repo_revision = "main"
