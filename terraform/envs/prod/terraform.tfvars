env            = "prod"
aws_account_id = "444455556666"
aws_region     = "us-west-2"
azs            = ["us-west-2a", "us-west-2b", "us-west-2c"]
vpc_cidr       = "10.20.0.0/16"

# One NAT gateway per AZ: losing an AZ keeps egress (image pulls, S3 via endpoint aside) in the others.
single_nat_gateway = false

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

# The API is reachable only from inside the VPC (VPN / bastion); CI deploys through Argo CD.
cluster_endpoint_public_access = false
cluster_admin_principal_arns = [
  "arn:aws:iam::444455556666:role/mlops-platform-admin",
  "arn:aws:iam::444455556666:role/mlops-ci-deploy",
]

system_node_group = {
  instance_types = ["m7i.xlarge", "m6i.xlarge"]
  min_size       = 3
  max_size       = 6
  desired_size   = 3
  disk_size_gib  = 100
}

# A fresh account has no Spot service-linked role; false once the account has one (docs/first-apply.md).
create_spot_service_linked_role = true

# Every host name is <name>.prod.mlops.example.com (argocd, workflows, grafana, mlflow, api): the one place
# the domain is set; mlops validate (MLOPS150) holds every Ingress and chart value to it.
domain = "prod.mlops.example.com"
# The identity provider (OIDC): one issuer per environment, and where it puts the groups.
sso = {
  issuer           = "https://login.example.com/oauth2/mlops-prod"
  argocd_client_id = "mlops-prod-argocd"
  # Okta: a `groups` claim and scope with group names. Entra ID: groups_scope = "" (the
  # claim comes from the app's groupMembershipClaims) and object ids, or cloud-only display
  # names, in the three RBAC places. Cognito: groups_claim = "cognito:groups",
  # groups_scope = "". The chart values follow it (MLOPS150; docs/access.md).
  groups_claim = "groups"
  groups_scope = "groups"
}

# Pods' logs in CloudWatch (Fluent Bit); workflow step logs are also archived to S3.
container_log_retention_days = 90
log_retention_days           = 365

data_noncurrent_version_expiration_days = 90
argo_artifacts_expiration_days          = 30
data_force_destroy                      = false

db_engine_version            = "17"
db_instance_class            = "db.r7g.large"
db_allocated_storage_gib     = 100
db_max_allocated_storage_gib = 1000
db_multi_az                  = true
db_deletion_protection       = true
db_backup_retention_days     = 30
db_password_version          = 1

ecr_tagged_images_kept  = 100
ecr_release_images_kept = 500
# Images arrive by replication from dev's registry, where CI pushes (the CI account).
ecr_replicate_to_accounts   = []
ecr_replicate_from_accounts = ["111122223333"]

argocd_chart_version      = "10.9.6"
argocd_apps_chart_version = "2.0.2"
argocd_high_availability  = true

platform_repo_url      = "https://github.com/example-org/mlops-platform.git"
platform_repo_revision = "main"
