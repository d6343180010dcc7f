output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name <this>)."
  value       = module.eks.cluster_name
}

output "bucket_names" {
  description = "S3 bucket per purpose."
  value       = module.data.bucket_names
}

output "ecr_repository_urls" {
  description = "ECR repository URL per image."
  value       = module.ecr.repository_urls
}

output "workload_role_arns" {
  description = "IRSA role ARN per ServiceAccount (the overlays' eks.amazonaws.com/role-arn annotations)."
  value       = merge(module.workload_roles.role_arns, { karpenter = module.karpenter.controller_role_arn })
}

output "mlflow_db_secret_arn" {
  description = "Secrets Manager secret with the MLflow database connection."
  value       = module.mlflow_db.secret_arn
}

output "argocd_cluster_secret_annotations" {
  description = "Facts written onto the Argo CD cluster secret for the ApplicationSets."
  value       = module.argocd_bootstrap.cluster_secret_annotations
}
