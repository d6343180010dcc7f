variable "name" {
  description = "IAM role name (the platform's rule: <name_prefix>-<ServiceAccount or controller>)."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster whose sessions the role trusts (aws:RequestTag/eks-cluster-arn) and that holds the association."
  type        = string
}

variable "namespace" {
  description = "Namespace of the one ServiceAccount whose pods get the role."
  type        = string
}

variable "service_account" {
  description = "Name of the one ServiceAccount whose pods get the role."
  type        = string
}

variable "inline_policies" {
  description = "Inline policy name -> policy JSON (an aws_iam_policy_document's json): what the role may do."
  type        = map(string)
  default     = {}
}

variable "managed_policy_arns" {
  description = "Label -> ARN of a managed policy to attach (labels, not ARNs, are the keys: they are known at plan)."
  type        = map(string)
  default     = {}
}

variable "associate" {
  description = "Create the Pod Identity association; false only where an aws_eks_addon associates the role itself."
  type        = bool
  default     = true
}

variable "max_session_duration" {
  description = "Longest session in seconds the agent may ask for (IAM accepts 3600 to 43200)."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200
    error_message = "max_session_duration must be between 3600 and 43200 seconds (IAM's limits)."
  }
}

variable "tags" {
  description = "Tags of the role and the association (the role also gets kubernetes-namespace and kubernetes-service-account)."
  type        = map(string)
  default     = {}
}
