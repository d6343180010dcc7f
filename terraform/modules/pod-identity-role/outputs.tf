output "role_arn" {
  description = "ARN of the role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the role."
  value       = aws_iam_role.this.name
}

output "association_id" {
  description = "ID of the Pod Identity association; null where var.associate is false."
  value       = one(aws_eks_pod_identity_association.this[*].association_id)
}
