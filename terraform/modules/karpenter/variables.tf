variable "cluster_name" {
  description = "Name of the EKS cluster whose nodes Karpenter launches; scopes the controller's EC2 permissions by tag."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every name, mlops-<env>; roles are <prefix>-karpenter and <prefix>-karpenter-node."
  type        = string
}

variable "namespace" {
  description = "Namespace of the Karpenter controller's ServiceAccount."
  type        = string
}

variable "service_account" {
  description = "Name of the Karpenter controller's ServiceAccount (set in the chart values)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
}

variable "create_spot_service_linked_role" {
  description = "Create the account's EC2 Spot service-linked role (AWSServiceRoleForEC2Spot); false where the account already has it (one per account)."
  type        = bool
}
