output "role_arns" {
  description = "IRSA role ARN per ServiceAccount name."
  value       = { for sa, role in aws_iam_role.workload : sa => role.arn }
}

output "service_accounts" {
  description = "Namespace per ServiceAccount name that has a role here."
  value       = local.service_accounts
}
