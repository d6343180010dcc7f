variable "name_prefix" {
  description = "Prefix of every role name, mlops-<env>; a ServiceAccount <sa> gets the role <prefix>-<sa>."
  type        = string
}

variable "env" {
  description = "Environment (dev, prod); External Secrets may read the secrets under mlops/<env>/."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster whose Pod Identity associations map each ServiceAccount to its role."
  type        = string
}

variable "bucket_arns" {
  description = "Bucket ARN per purpose (datasets, mlflow-artifacts, model-weights, argo-artifacts) from the data module."
  type        = map(string)
}

variable "data_kms_key_arn" {
  description = "KMS key of the data buckets."
  type        = string
}

variable "ecr_repository_arns" {
  description = "ECR repository ARN per image; buildkit may push to these and no others."
  type        = map(string)
}

variable "secret_kms_key_arns" {
  description = "KMS keys of secrets created elsewhere (the MLflow database secret) that External Secrets must decrypt."
  type        = list(string)
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
}
