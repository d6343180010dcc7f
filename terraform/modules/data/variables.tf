variable "name_prefix" {
  description = "Prefix of every bucket name, mlops-<env>; buckets are <prefix>-<purpose> (the platform's naming rule)."
  type        = string
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted object version is kept before it expires (restores after mistakes)."
  type        = number
}

variable "argo_artifacts_expiration_days" {
  description = "Days workflow artifacts (logs, intermediate outputs) live in the argo-artifacts bucket."
  type        = number
}

variable "access_log_expiration_days" {
  description = "Days S3 server access logs are kept."
  type        = number
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete non-empty buckets (dev only; prod keeps its data)."
  type        = bool
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
}
