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
  description = "Role ARN per ServiceAccount (each one's Pod Identity association)."
  value       = merge(module.workload_roles.role_arns, { karpenter = module.karpenter.controller_role_arn })
}

output "mlflow_db_secret_arn" {
  description = "Secrets Manager secret with the MLflow database connection."
  value       = module.mlflow_db.secret_arn
}

output "cluster_endpoint" {
  description = "HTTPS endpoint of the EKS API (private-only in prod: reach it through the VPN or an SSM tunnel, docs/first-apply.md)."
  value       = module.eks.cluster_endpoint
}

output "argocd_bootstrap" {
  description = "Everything terraform/argocd needs to install Argo CD and write the cluster secret; read there through terraform_remote_state."
  value = {
    env                                = var.env
    aws_account_id                     = var.aws_account_id
    aws_region                         = var.aws_region
    cluster_name                       = module.eks.cluster_name
    cluster_endpoint                   = module.eks.cluster_endpoint
    cluster_certificate_authority_data = module.eks.cluster_certificate_authority_data
    chart_version                      = var.argocd_chart_version
    apps_chart_version                 = var.argocd_apps_chart_version
    high_availability                  = var.argocd_high_availability
    platform_repo_url                  = var.platform_repo_url
    platform_repo_revision             = var.platform_repo_revision
    domain                             = var.domain
    sso                                = var.sso
    role_arns = merge(
      module.workload_roles.role_arns,
      { karpenter = module.karpenter.controller_role_arn },
    )
    extra_annotations = merge(
      { for purpose, bucket in module.data.bucket_names : "${replace(purpose, "-", "_")}_bucket" => bucket },
      {
        karpenter_node_role          = module.karpenter.node_role_name
        karpenter_interruption_queue = module.karpenter.interruption_queue_name
      },
    )
  }
}
