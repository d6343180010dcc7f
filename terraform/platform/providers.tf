provider "aws" {
  region = var.aws_region
  # A plan with the wrong credentials stops here instead of touching the other account.
  allowed_account_ids = [var.aws_account_id]

  default_tags {
    tags = local.tags
  }
}
