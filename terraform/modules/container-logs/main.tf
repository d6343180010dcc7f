# Container logs in CloudWatch Logs: one log group per concern, KMS-encrypted, kept for the
# environment's retention, written by Fluent Bit (apps/upstream/fluent-bit: a DaemonSet in
# kube-system tailing every node's /var/log/containers). Its role reaches the pods through an
# EKS Pod Identity association and may write these groups only; it creates none
# (auto_create_group off), so no group exists without retention and encryption.
# Control-plane logs go to /aws/eks/<cluster>/cluster (modules/eks); workflow step logs are
# also archived to S3 by Argo (archiveLogs).

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  prefix    = "/mlops/${var.env}/containers"
  log_arn   = "arn:${local.partition}:logs:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:log-group"

  # The groups Fluent Bit routes to (apps/upstream/fluent-bit/values-<env>.yaml, one output
  # each; tests/manifests/test_container_logs.py checks the routing against these names).
  groups = ["models", "argo", "gateway", "platform"]

  # The chart's DaemonSet ServiceAccount (apps/upstream/fluent-bit/values-<env>.yaml).
  namespace       = "kube-system"
  service_account = "fluent-bit"
}

module "logs_key" {
  source = "../kms-key"

  alias       = "${var.name_prefix}-container-logs"
  description = "${var.name_prefix}: encryption of the container log groups"
  service_principals = {
    CloudWatchLogsEncrypts = {
      service = "logs.${data.aws_region.current.id}.amazonaws.com"
      actions = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      conditions = [{
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["${local.log_arn}:${local.prefix}/*"]
      }]
    }
  }
  tags = var.tags
}

resource "aws_cloudwatch_log_group" "containers" {
  for_each = toset(local.groups)

  name              = "${local.prefix}/${each.key}"
  retention_in_days = var.retention_days
  kms_key_id        = module.logs_key.arn
  tags              = var.tags
}

# Fluent Bit's role (modules/pod-identity-role): pinned to its one ServiceAccount in this
# cluster by the session tags EKS sets, as every other role.
module "fluent_bit_role" {
  source = "../pod-identity-role"

  name            = "${var.name_prefix}-fluent-bit"
  cluster_name    = var.cluster_name
  namespace       = local.namespace
  service_account = local.service_account
  inline_policies = { fluent-bit = data.aws_iam_policy_document.fluent_bit.json }
  tags            = var.tags
}

# Streams are created per pod (log_stream_prefix + tag), so CreateLogStream too; nothing else.
data "aws_iam_policy_document" "fluent_bit" {
  statement {
    sid       = "WriteContainerLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = flatten([for group in aws_cloudwatch_log_group.containers : [group.arn, "${group.arn}:*"]])
  }
}
