terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100 is the provider tests/terraform validates against offline; platform/ pins 6.x.
      version = ">= 5.100, < 7.0"
    }
  }
}
