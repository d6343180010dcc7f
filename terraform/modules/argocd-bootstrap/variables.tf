variable "env" {
  description = "Environment of this cluster (dev, prod); the cluster secret's `env` label, which the ApplicationSets select on."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster name, passed to the ApplicationSets as an annotation (Karpenter values, discovery tags)."
  type        = string
}

variable "cluster_endpoint" {
  description = "API server endpoint, passed as an annotation (Karpenter's settings.clusterEndpoint)."
  type        = string
}

variable "aws_account_id" {
  description = "AWS account of this environment, passed as an annotation (role ARNs, ECR registry)."
  type        = string
}

variable "aws_region" {
  description = "AWS region of this environment, passed as an annotation."
  type        = string
}

variable "chart_version" {
  description = "Version of the argo-cd Helm chart (argoproj/argo-helm); pins the Argo CD release."
  type        = string
}

variable "apps_chart_version" {
  description = "Version of the argocd-apps Helm chart that creates the bootstrap AppProject and the root Application."
  type        = string
}

variable "high_availability" {
  description = "Run Argo CD's controllers with replicas and Redis HA (prod)."
  type        = bool
}

variable "platform_repo_url" {
  description = "Git URL of this repository; the root Application and the ApplicationSets read from it."
  type        = string
}

variable "platform_repo_revision" {
  description = "Git revision (branch or tag) the cluster follows."
  type        = string
}

variable "role_arns" {
  description = "Pod Identity role ARN per ServiceAccount name; each becomes the annotation <sa>_role_arn on the cluster secret."
  type        = map(string)
}

variable "extra_annotations" {
  description = "Further facts for the ApplicationSets (bucket names, Karpenter queue and node role), annotation name -> value."
  type        = map(string)
}

variable "domain" {
  description = "The environment's DNS domain; Argo CD is https://argocd.<domain> (terraform/envs/<env>: domain)."
  type        = string
}

variable "sso" {
  description = "The identity provider: OIDC issuer URL, Argo CD's client id (a public client with PKCE: no secret), the claim that carries the groups and the scope that asks for it (\"\": none)."
  type = object({
    issuer           = string
    argocd_client_id = string
    groups_claim     = optional(string, "groups")
    groups_scope     = optional(string, "groups")
  })

  validation {
    condition     = can(regex("^https://", var.sso.issuer))
    error_message = "sso.issuer must be an https:// URL (the identity provider's OIDC issuer)."
  }
}
