output "bucket_names" {
  description = "Bucket name per purpose (datasets, mlflow-artifacts, model-weights, argo-artifacts)."
  value       = { for purpose, bucket in aws_s3_bucket.data : purpose => bucket.id }
}

output "bucket_arns" {
  description = "Bucket ARN per purpose."
  value       = { for purpose, bucket in aws_s3_bucket.data : purpose => bucket.arn }
}

output "kms_key_arn" {
  description = "KMS key that encrypts the data buckets; readers and writers need kms:Decrypt / GenerateDataKey on it."
  value       = module.key.arn
}
