terraform {
  # Write-only arguments (password_wo, secret_string_wo) need Terraform 1.11: the
  # database password never enters the plan or the state.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.7"
    }
  }
}
