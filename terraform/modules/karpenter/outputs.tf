output "controller_role_arn" {
  description = "Role of the Karpenter controller, associated with its ServiceAccount by Pod Identity."
  value       = module.controller_role.role_arn
}

output "node_role_name" {
  description = "IAM role of Karpenter-launched nodes; EC2NodeClass spec.role names it."
  value       = aws_iam_role.node.name
}

output "node_instance_profile_name" {
  description = "Instance profile of the node role, for EC2NodeClasses that name a profile instead of a role."
  value       = aws_iam_instance_profile.node.name
}

output "interruption_queue_name" {
  description = "SQS queue Karpenter reads interruption events from (chart value settings.interruptionQueue)."
  value       = aws_sqs_queue.interruption.name
}
