# The one thing that must exist before an environment can keep state: an S3 bucket per
# account. Run once per environment with local state (see terraform/README.md); the
# state of this tiny stack is disposable because the bucket can be imported again.

locals {
  bucket = "mlops-${var.env}-tfstate"
}

module "key" {
  source = "../modules/kms-key"

  alias       = local.bucket
  description = "${local.bucket}: Terraform state"
}

# Hardened like modules/data's buckets but not through it: prevent_destroy must be a
# literal here, and the state bucket exists before the environment's log bucket.
resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_18:created before the environment's access-log bucket exists; CloudTrail records who reads and writes state
  #checkov:skip=CKV_AWS_144:state is small and versioned; a lost region means rebuilding the environment, not restoring it
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the state bucket
  bucket = local.bucket

  lifecycle {
    prevent_destroy = true
    # State is local here, one workspace per environment (terraform/README.md, step 1):
    # applying prod in dev's workspace would plan to replace dev's bucket with prod's.
    precondition {
      condition     = terraform.workspace == var.env
      error_message = "Select the environment's workspace first: terraform -chdir=terraform/bootstrap workspace select -or-create ${var.env}"
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.key.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "old-state-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

data "aws_iam_policy_document" "state" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state.json

  depends_on = [aws_s3_bucket_public_access_block.state]
}

output "state_bucket" {
  description = "Name of the state bucket; envs/<env>/backend.s3.tfbackend names it."
  value       = aws_s3_bucket.state.id
}
