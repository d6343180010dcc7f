variable "env" {
  description = "Environment whose state bucket this creates (dev, prod); the bucket is mlops-<env>-tfstate."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.env)
    error_message = "env must be dev or prod."
  }
}

variable "aws_account_id" {
  description = "AWS account of the environment; the provider refuses any other."
  type        = string
}

variable "aws_region" {
  description = "Region of the state bucket (envs/<env>/backend.s3.tfbackend names the same)."
  type        = string
}
