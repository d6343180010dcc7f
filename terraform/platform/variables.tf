variable "env" {
  description = "Environment name (dev, prod): names every resource mlops-<env>-* and labels the Argo CD cluster secret."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.env)
    error_message = "env must be dev or prod."
  }
}

variable "aws_account_id" {
  description = "AWS account of this environment; the provider refuses any other."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id must be 12 digits."
  }
}

variable "aws_region" {
  description = "AWS region of this environment."
  type        = string
}

variable "azs" {
  description = "The three availability zones the VPC spans."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the VPC (dev) instead of one per AZ (prod)."
  type        = bool
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (the kubernetes-validate schemas of `mlops validate` are pinned to the same)."
  type        = string
}

variable "eks_addon_versions" {
  description = "Exact version of each EKS add-on for kubernetes_version (modules/eks validates the set and the vX.Y.Z-eksbuild.N form); dev moves first, prod follows in a pull request."
  type        = map(string)
}

variable "cluster_endpoint_public_access" {
  description = "Whether the EKS API endpoint is reachable from outside the VPC (from cluster_endpoint_public_access_cidrs)."
  type        = bool
}

variable "cluster_api_access" {
  description = <<-EOT
    Who reaches the EKS API on 443. A site input: set it where you run terraform
    (TF_VAR_cluster_api_access or -var), never in envs/<env>/terraform.tfvars. public_cidrs:
    where the public endpoint answers (dev: office / VPN egress; prod: [] as the endpoint is
    private). private_cidrs and private_security_group_ids: what may reach the private
    endpoint inside the VPC besides the nodes (VPN client range, peered network, a CI runner's
    security group). docs/first-apply.md shows both ways in, VPN and SSM tunnel.
  EOT
  type = object({
    public_cidrs               = list(string)
    private_cidrs              = list(string)
    private_security_group_ids = list(string)
  })

  validation {
    condition     = alltrue([for cidr in concat(var.cluster_api_access.public_cidrs, var.cluster_api_access.private_cidrs) : can(cidrhost(cidr, 0))])
    error_message = "cluster_api_access: every entry of public_cidrs and private_cidrs must be an IPv4 CIDR such as 198.18.7.0/24."
  }

  # RFC 5737 documentation ranges route nowhere: an endpoint open only to them is open to
  # no one, and the first apply from the office times out.
  validation {
    condition = alltrue([
      for cidr in concat(var.cluster_api_access.public_cidrs, var.cluster_api_access.private_cidrs) :
      !can(regex("^(192\\.0\\.2|198\\.51\\.100|203\\.0\\.113)\\.", cidr))
    ])
    error_message = "cluster_api_access: 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 are documentation ranges (RFC 5737): set the CIDRs you run terraform and kubectl from."
  }

  validation {
    condition     = var.env != "prod" || !contains(var.cluster_api_access.public_cidrs, "0.0.0.0/0")
    error_message = "cluster_api_access.public_cidrs: prod's API is never open to 0.0.0.0/0; reach it through the VPN or an SSM tunnel."
  }

  validation {
    condition     = !var.cluster_endpoint_public_access || length(var.cluster_api_access.public_cidrs) > 0
    error_message = "cluster_api_access.public_cidrs: the public endpoint is enabled (cluster_endpoint_public_access) but no CIDR may reach it."
  }
}

variable "cluster_admin_principal_arns" {
  description = "IAM roles that get cluster-admin through EKS access entries (the platform team's SSO role, the CI deploy role)."
  type        = list(string)
}

variable "system_node_group" {
  description = "Size of the managed system node group (controllers only; workloads run on Karpenter nodes)."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = number
  })
}

variable "create_spot_service_linked_role" {
  description = "Create the account's EC2 Spot service-linked role (AWSServiceRoleForEC2Spot), without which no spot node launches; false only where `aws iam get-role --role-name AWSServiceRoleForEC2Spot` finds it already."
  type        = bool
}

variable "domain" {
  description = "The environment's DNS domain, a public Route53 zone delegated before the first apply (docs/first-apply.md). Every host name of the front door is <name>.<domain>: the one place it is set (mlops validate MLOPS150 holds the manifests to it)."
  type        = string

  # The committed tfvars carry the RFC 2606 example domain: an apply with it would wait on
  # a zone nobody can delegate. Refused, like cluster_api_access's documentation ranges.
  validation {
    condition     = !can(regex("(^|\\.)example\\.(com|net|org)$", var.domain))
    error_message = "domain: example.com, example.net and example.org are placeholders (RFC 2606): set the environment's own delegated zone in envs/<env>/terraform.tfvars (docs/first-apply.md, DNS and certificates)."
  }
}

variable "sso" {
  description = "The identity provider every UI signs people in with (docs/access.md): its OIDC issuer URL, Argo CD's client id, the ID-token claim that carries the person's groups (groups_claim: Okta and Entra ID `groups`, Cognito `cognito:groups`) and the scope that asks for it (groups_scope; \"\" where the provider has none: Entra ID, Cognito). The same issuer and claim appear in the Argo Workflows and Grafana values (MLOPS150 compares them)."
  type = object({
    issuer           = string
    argocd_client_id = string
    groups_claim     = optional(string, "groups")
    groups_scope     = optional(string, "groups")
  })

  # The committed issuer is a placeholder: Argo CD's OIDC discovery of it fails and, with the
  # local admin off, nobody can sign in (docs/first-apply.md, 1.0 identity provider).
  validation {
    condition     = !can(regex("^https://([^/]+\\.)?example\\.(com|net|org)(/|:|$)", var.sso.issuer))
    error_message = "sso.issuer: example.com, example.net and example.org are placeholders (RFC 2606): register the clients (docs/access.md, The identity provider) and set the issuer in envs/<env>/terraform.tfvars."
  }

  validation {
    condition     = startswith(var.sso.issuer, "https://")
    error_message = "sso.issuer: an OIDC issuer is an https:// URL (its /.well-known/openid-configuration is what Argo CD reads)."
  }
}

variable "container_log_retention_days" {
  description = "Days CloudWatch keeps the pods' logs (/mlops/<env>/containers/*, modules/container-logs)."
  type        = number
}

variable "log_retention_days" {
  description = "Days the EKS control plane and VPC flow logs are kept."
  type        = number
}

variable "data_noncurrent_version_expiration_days" {
  description = "Days overwritten/deleted object versions stay recoverable in the data buckets."
  type        = number
}

variable "argo_artifacts_expiration_days" {
  description = "Days workflow artifacts live in the argo-artifacts bucket."
  type        = number
}

variable "data_force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets (dev only)."
  type        = bool
}

variable "db_engine_version" {
  description = "PostgreSQL major version of the MLflow database."
  type        = string
}

variable "db_instance_class" {
  description = "RDS instance class of the MLflow database."
  type        = string
}

variable "db_allocated_storage_gib" {
  description = "Initial storage of the MLflow database in GiB."
  type        = number
}

variable "db_max_allocated_storage_gib" {
  description = "Storage autoscaling ceiling of the MLflow database in GiB."
  type        = number
}

variable "db_multi_az" {
  description = "Multi-AZ standby for the MLflow database (prod)."
  type        = bool
}

variable "db_deletion_protection" {
  description = "Deletion protection on the MLflow database (prod)."
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Days of automated backups of the MLflow database."
  type        = number
}

variable "db_password_version" {
  description = "Bump to rotate the MLflow database password (terraform writes database and secret together)."
  type        = number
}

variable "ecr_tagged_images_kept" {
  description = "Commit images each ECR repository keeps."
  type        = number
}

variable "ecr_release_images_kept" {
  description = "Release images (X.Y.Z) each ECR repository keeps, counted apart from commit images."
  type        = number
}

variable "ecr_replicate_to_accounts" {
  description = "In the CI account (dev): accounts whose registries receive every mlops/* image CI pushes."
  type        = list(string)
}

variable "ecr_replicate_from_accounts" {
  description = "In the other accounts (prod): the CI account, allowed to replicate mlops/* here."
  type        = list(string)
}

variable "argocd_chart_version" {
  description = "argo-cd Helm chart version (pins the Argo CD release)."
  type        = string
}

variable "argocd_apps_chart_version" {
  description = "argocd-apps Helm chart version (bootstrap AppProject + root Application)."
  type        = string
}

variable "argocd_high_availability" {
  description = "Argo CD with replicas and Redis HA (prod)."
  type        = bool
}

variable "platform_repo_url" {
  description = "Git URL of this repository, which Argo CD syncs from."
  type        = string
}

variable "platform_repo_revision" {
  description = "Branch or tag of this repository the cluster follows."
  type        = string
}
