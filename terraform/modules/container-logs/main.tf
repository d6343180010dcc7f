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
  cluster_arn     = "arn:${local.partition}:eks:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:cluster/${var.cluster_name}"
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

# Pinned to Fluent Bit's one ServiceAccount in this cluster by the session tags EKS sets, as
# every other role (modules/workload-roles; https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html).
data "aws_iam_policy_document" "pod_identity_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/kubernetes-namespace"
      values   = [local.namespace]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/kubernetes-service-account"
      values   = [local.service_account]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/eks-cluster-arn"
      values   = [local.cluster_arn]
    }
  }
}

resource "aws_iam_role" "fluent_bit" {
  name                 = "${var.name_prefix}-fluent-bit"
  assume_role_policy   = data.aws_iam_policy_document.pod_identity_trust.json
  max_session_duration = 3600
  tags                 = var.tags
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

resource "aws_iam_role_policy" "fluent_bit" {
  name   = "fluent-bit"
  role   = aws_iam_role.fluent_bit.id
  policy = data.aws_iam_policy_document.fluent_bit.json
}

resource "aws_eks_pod_identity_association" "fluent_bit" {
  cluster_name    = var.cluster_name
  namespace       = local.namespace
  service_account = local.service_account
  role_arn        = aws_iam_role.fluent_bit.arn
  tags            = var.tags
}
