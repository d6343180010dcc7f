output "repository_urls" {
  description = "Repository URL per image (<account>.dkr.ecr.<region>.amazonaws.com/mlops/<image>)."
  value       = { for image, repo in aws_ecr_repository.image : image => repo.repository_url }
}

output "repository_arns" {
  description = "Repository ARN per image."
  value       = { for image, repo in aws_ecr_repository.image : image => repo.arn }
}

output "kms_key_arn" {
  description = "KMS key of the repositories; pushers need kms:GenerateDataKey / Decrypt on it."
  value       = module.key.arn
}

output "cache_repository_arns" {
  description = "Build-cache repository ARN per image (mlops-cache/<image>, mutable)."
  value       = { for image, repo in aws_ecr_repository.cache : image => repo.arn }
}
