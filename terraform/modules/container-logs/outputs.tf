output "log_group_names" {
  description = "Container log group per concern (models, argo, gateway, platform)."
  value       = { for name, group in aws_cloudwatch_log_group.containers : name => group.name }
}

output "role_arn" {
  description = "Fluent Bit's role, bound to kube-system/fluent-bit by a Pod Identity association."
  value       = module.fluent_bit_role.role_arn
}
