variable "env" {
  description = "Environment (dev, prod) whose platform state this root reads (mlops-<env>-tfstate, envs/<env>/terraform.tfstate)."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.env)
    error_message = "env must be dev or prod."
  }
}

variable "aws_region" {
  description = "Region of the environment's state bucket (envs/<env>/backend.s3.tfbackend)."
  type        = string
}

variable "kubernetes_api_url" {
  description = "Where to reach the EKS API when the endpoint itself is not reachable from here, e.g. https://localhost:8443 through an SSM port-forwarding session (docs/first-apply.md); null: the cluster endpoint."
  type        = string
  default     = null

  validation {
    condition     = var.kubernetes_api_url == null || can(regex("^https://[^/]+$", var.kubernetes_api_url))
    error_message = "kubernetes_api_url must be https://host[:port] with no path, e.g. https://localhost:8443."
  }
}
