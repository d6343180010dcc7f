# The platform's buckets, one per purpose, named <prefix>-<purpose>: KMS-encrypted,
# versioned, private, TLS-only, with lifecycle rules, and server access logs written to
# a separate log bucket.

data "aws_caller_identity" "current" {}

locals {
  purposes = ["datasets", "mlflow-artifacts", "model-weights", "argo-artifacts"]

  # Purpose -> days after which current objects expire; null keeps them.
  expiration_days = {
    datasets           = null
    "mlflow-artifacts" = null
    "model-weights"    = null
    "argo-artifacts"   = var.argo_artifacts_expiration_days
  }

  log_bucket = "${var.name_prefix}-access-logs"
}

module "key" {
  source = "../kms-key"

  alias       = "${var.name_prefix}-data"
  description = "${var.name_prefix}: S3 data buckets"
  tags        = var.tags
}

# ---------------------------------------------------------------- data buckets

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_144:single-region platform; versioning + noncurrent retention cover mistakes, and model weights are reproducible from MLflow runs
  #checkov:skip=CKV2_AWS_62:nothing consumes S3 events; workflows poll MLflow, not the buckets
  for_each = toset(local.purposes)

  bucket        = "${var.name_prefix}-${each.key}"
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { purpose = each.key })
}

resource "aws_s3_bucket_ownership_controls" "data" {
  for_each = toset(local.purposes)

  bucket = aws_s3_bucket.data[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  for_each = toset(local.purposes)

  bucket                  = aws_s3_bucket.data[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "data" {
  for_each = toset(local.purposes)

  bucket = aws_s3_bucket.data[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  for_each = toset(local.purposes)

  bucket = aws_s3_bucket.data[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.key.arn
    }
    # S3 Bucket Keys cut KMS requests (and cost) for the many small artifact files.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  for_each = toset(local.purposes)

  bucket = aws_s3_bucket.data[each.key].id

  rule {
    id     = "noncurrent-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  dynamic "rule" {
    for_each = local.expiration_days[each.key] == null ? [] : [local.expiration_days[each.key]]
    content {
      id     = "expire-objects"
      status = "Enabled"
      filter {}
      expiration {
        days = rule.value
      }
      abort_incomplete_multipart_upload {
        days_after_initiation = 7
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.data]
}

resource "aws_s3_bucket_logging" "data" {
  for_each = toset(local.purposes)

  bucket        = aws_s3_bucket.data[each.key].id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "${each.key}/"
}

data "aws_iam_policy_document" "tls_only" {
  for_each = toset(local.purposes)

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.data[each.key].arn, "${aws_s3_bucket.data[each.key].arn}/*"]
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

resource "aws_s3_bucket_policy" "data" {
  for_each = toset(local.purposes)

  bucket = aws_s3_bucket.data[each.key].id
  policy = data.aws_iam_policy_document.tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.data]
}

# ---------------------------------------------------------------- access log bucket

# Not one more key of the for_each above: S3 delivers access logs only to SSE-S3 buckets,
# and this bucket's checkov skips (no logging, no KMS) must not cover the data buckets.

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:this is the access log target; logging it into itself would loop
  #checkov:skip=CKV_AWS_145:S3 server access logs can only be delivered to SSE-S3 buckets, not SSE-KMS
  #checkov:skip=CKV_AWS_144:access logs are an audit aid, not data; a second region doubles cost for no recovery need
  #checkov:skip=CKV2_AWS_62:nothing consumes events of the log bucket
  bucket        = local.log_bucket
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { purpose = "access-logs" })
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.logs]
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "S3ServerAccessLogsDeliver"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
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

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}
