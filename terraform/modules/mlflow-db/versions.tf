terraform {
  # Write-only arguments (password_wo, secret_string_wo) need Terraform 1.11: the
  # database password never enters the plan or the state.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100 is the provider tests/terraform validates against offline; platform/ pins 6.x.
      version = ">= 5.100, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.7"
    }
  }
}
