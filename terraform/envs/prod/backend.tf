# State lives in this account's state bucket (terraform/bootstrap creates it); the lock
# is an S3 object next to the state (use_lockfile), no DynamoDB table needed.
terraform {
  backend "s3" {
    bucket       = "mlops-prod-tfstate"
    key          = "envs/prod/terraform.tfstate"
    region       = "us-west-2"
    encrypt      = true
    use_lockfile = true
  }
}
