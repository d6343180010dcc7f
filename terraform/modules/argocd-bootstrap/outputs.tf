output "cluster_secret_annotations" {
  description = "Annotations written on the in-cluster cluster secret, for inspection (`terraform output`)."
  value       = local.annotations
}

output "argocd_chart_version" {
  description = "Version of the argo-cd chart installed."
  value       = helm_release.argocd.version
}
