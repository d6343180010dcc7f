# State lives in the environment's own account, in the bucket terraform/bootstrap creates;
# `init -backend-config=../envs/<env>/backend.s3.tfbackend` names bucket, key and region.
# The lock is an S3 object next to the state (use_lockfile), no DynamoDB table needed.
terraform {
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
