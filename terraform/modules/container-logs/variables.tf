variable "env" {
  description = "Environment (dev, prod); log groups are /mlops/<env>/containers/<group>."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every name, mlops-<env>; the role is <prefix>-fluent-bit."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster whose ServiceAccount kube-system/fluent-bit the Pod Identity association names."
  type        = string
}

variable "retention_days" {
  description = "Days CloudWatch keeps container logs (a value CloudWatch accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  type        = number

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.retention_days)
    error_message = "retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
}
