terraform {
  # 1.10: S3-native state locking (use_lockfile); 1.11: write-only arguments, which keep
  # the database password out of the state (modules/mlflow-db).
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}
