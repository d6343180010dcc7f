variable "docker_hub_secret_name" {
  description = "Secrets Manager secret with Docker Hub credentials (keys username, accessToken); Docker Hub refuses the cache without it."
  type        = string
  default     = "ecr-pullthroughcache/docker-hub"

  validation {
    condition     = startswith(var.docker_hub_secret_name, "ecr-pullthroughcache/")
    error_message = "docker_hub_secret_name must start with ecr-pullthroughcache/ (ECR refuses other secret names)."
  }
}

variable "ghcr_secret_name" {
  description = "Secrets Manager secret with GitHub credentials (keys username, accessToken: a token with read:packages) for ghcr.io."
  type        = string
  default     = "ecr-pullthroughcache/ghcr"

  validation {
    condition     = startswith(var.ghcr_secret_name, "ecr-pullthroughcache/")
    error_message = "ghcr_secret_name must start with ecr-pullthroughcache/ (ECR refuses other secret names)."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the repositories the cache creates (the ECR module's key)."
  type        = string
}

variable "puller_role_names" {
  description = "IAM roles whose nodes pull through the cache (system nodes, Karpenter nodes)."
  type        = list(string)
}

variable "tags" {
  description = "Tags added to every repository the cache creates."
  type        = map(string)
}
