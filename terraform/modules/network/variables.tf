variable "name" {
  description = "Name of the VPC and prefix of its resources, e.g. mlops-dev."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster name; subnets are tagged for its load balancers and for Karpenter discovery."
  type        = string
}

variable "cidr" {
  description = "IPv4 CIDR block of the VPC (a /16 leaves room for pod IPs from the VPC CNI)."
  type        = string
}

variable "azs" {
  description = "Availability zones, one private and one public subnet in each."
  type        = list(string)

  validation {
    condition     = length(var.azs) == 3
    error_message = "The platform spreads over exactly 3 availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the whole VPC (cheaper, dev) instead of one per AZ (prod: an AZ outage keeps egress in the others)."
  type        = bool
}

variable "flow_log_retention_days" {
  description = "Days the VPC flow logs are kept in CloudWatch Logs."
  type        = number
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
}
