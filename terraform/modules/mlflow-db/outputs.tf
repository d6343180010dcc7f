output "address" {
  description = "Hostname of the MLflow database."
  value       = aws_db_instance.this.address
}

output "secret_arn" {
  description = "ARN of the connection secret mlops/<env>/mlflow-db."
  value       = aws_secretsmanager_secret.connection.arn
}

output "kms_key_arn" {
  description = "KMS key of the database and its secret; External Secrets needs kms:Decrypt on it."
  value       = module.key.arn
}
