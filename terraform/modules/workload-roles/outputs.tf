output "role_arns" {
  description = "Role ARN per ServiceAccount name (its Pod Identity association's role)."
  value       = { for sa, role in module.workload_role : sa => role.role_arn }
}

output "service_accounts" {
  description = "Namespace per ServiceAccount name that has a role here."
  value       = local.service_accounts
}
