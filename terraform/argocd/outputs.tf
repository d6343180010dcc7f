output "argocd_cluster_secret_annotations" {
  description = "Facts written onto the Argo CD cluster secret for the ApplicationSets."
  value       = module.argocd_bootstrap.cluster_secret_annotations
}
