# One IAM role that reaches the pods of one ServiceAccount through EKS Pod Identity: the one
# place that writes the Pod Identity trust, so a change to it (a new condition key) is made
# once for every such role of the platform (modules/workload-roles, karpenter, ingress,
# container-logs, and the EKS add-ons' roles in modules/eks).
#
# The agent assumes the role for the pods (sts:AssumeRole, with session tags, hence
# sts:TagSession). The session tags EKS sets (kubernetes-namespace, kubernetes-service-account,
# eks-cluster-arn) pin the role to its one ServiceAccount in this one cluster, so an association
# made for another ServiceAccount (by mistake, or by someone with
# eks:CreatePodIdentityAssociation) gets nothing
# (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html, pod-id-abac.html).

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  # Built from the name rather than read from the cluster: the same string, known at plan.
  cluster_arn = "arn:${data.aws_partition.current.partition}:eks:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:cluster/${var.cluster_name}"
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "PodIdentity"
    effect  = "Allow"
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/kubernetes-namespace"
      values   = [var.namespace]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/kubernetes-service-account"
      values   = [var.service_account]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/eks-cluster-arn"
      values   = [local.cluster_arn]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  description          = "Pod Identity role of ServiceAccount ${var.namespace}/${var.service_account}"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
  # The ServiceAccount on the role too: who uses a role shows in the IAM console and in
  # Cost Explorer without reading terraform.
  tags = merge(var.tags, { "kubernetes-namespace" = var.namespace, "kubernetes-service-account" = var.service_account })
}

resource "aws_iam_role_policy" "this" {
  for_each = var.inline_policies

  name   = each.key
  role   = aws_iam_role.this.id
  policy = each.value
}

resource "aws_iam_role_policy_attachment" "this" {
  for_each = var.managed_policy_arns

  role       = aws_iam_role.this.name
  policy_arn = each.value
}

# Off only where another resource associates the role itself: an EKS add-on's role is
# associated by its aws_eks_addon (pod_identity_association), and a second association of
# the same ServiceAccount would be refused by EKS.
resource "aws_eks_pod_identity_association" "this" {
  count = var.associate ? 1 : 0

  cluster_name    = var.cluster_name
  namespace       = var.namespace
  service_account = var.service_account
  role_arn        = aws_iam_role.this.arn
  tags            = var.tags
}
