variable "name_prefix" {
  description = "Prefix of every name, mlops-<env>; roles are <prefix>-aws-load-balancer-controller and <prefix>-external-dns."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster whose ServiceAccounts the Pod Identity associations name."
  type        = string
}

variable "domain" {
  description = "The environment's DNS domain (a public Route53 zone that exists); every host name is <name>.<domain>."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.domain))
    error_message = "domain must be a lower-case DNS name without a trailing dot, e.g. dev.mlops.example.com."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
}
