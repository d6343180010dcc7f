terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100 is the provider tests/terraform validates against offline; envs pin 6.x.
      version = ">= 5.100, < 7.0"
    }
  }
}
