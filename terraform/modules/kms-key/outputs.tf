output "arn" {
  description = "ARN of the key (for encryption settings and IAM policies)."
  value       = aws_kms_key.this.arn
}
