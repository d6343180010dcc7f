# The front door's AWS side: the TLS certificate every host name of the environment uses,
# and the roles of the two controllers that build it from Ingresses (the AWS Load Balancer
# Controller: the ALB; external-dns: the records in the environment's hosted zone). Both
# roles reach their pods through EKS Pod Identity associations (the eks-pod-identity-agent
# add-on), so nothing in git names a role ARN.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  partition   = data.aws_partition.current.partition
  cluster_arn = "arn:${local.partition}:eks:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:cluster/${var.cluster_name}"

  # ServiceAccounts the charts create (apps/upstream/<chart>/values-<env>.yaml), namespace -> name.
  controllers = {
    aws-load-balancer-controller = { namespace = "kube-system", service_account = "aws-load-balancer-controller" }
    external-dns                 = { namespace = "kube-system", service_account = "external-dns" }
  }
}

# The environment's public zone (<env>.<parent> delegated from the parent zone, see
# docs/first-apply.md): ACM validates the certificate through it, external-dns writes the
# host names into it. Looked up, not created, so the delegation outlives this state.
data "aws_route53_zone" "env" {
  name         = var.domain
  private_zone = false
}

# One wildcard certificate, DNS-validated: every host name is <ui>.<domain>, one level below
# the zone, so one certificate covers them all and the controller finds it by host name.
# ACM renews it without anyone as long as the validation record stays.
resource "aws_acm_certificate" "wildcard" {
  domain_name       = "*.${var.domain}"
  validation_method = "DNS"
  key_algorithm     = "EC_prime256v1"
  tags              = merge(var.tags, { Name = "${var.name_prefix}-wildcard" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "certificate_validation" {
  for_each = {
    for option in aws_acm_certificate.wildcard.domain_validation_options : option.domain_name => option
  }

  zone_id         = data.aws_route53_zone.env.zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "wildcard" {
  certificate_arn         = aws_acm_certificate.wildcard.arn
  validation_record_fqdns = [for record in aws_route53_record.certificate_validation : record.fqdn]
}

# EKS Pod Identity: the session tags EKS sets pin each role to its controller's one
# ServiceAccount in this cluster, so an association made for another ServiceAccount (by
# mistake, or by someone with eks:CreatePodIdentityAssociation) gets nothing; as every other
# role (modules/workload-roles; https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html).
data "aws_iam_policy_document" "pod_identity_trust" {
  for_each = local.controllers

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
      values   = [each.value.namespace]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/kubernetes-service-account"
      values   = [each.value.service_account]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/eks-cluster-arn"
      values   = [local.cluster_arn]
    }
  }
}

resource "aws_iam_role" "controller" {
  for_each = local.controllers

  name                 = "${var.name_prefix}-${each.key}"
  assume_role_policy   = data.aws_iam_policy_document.pod_identity_trust[each.key].json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_eks_pod_identity_association" "controller" {
  for_each = local.controllers

  cluster_name    = var.cluster_name
  namespace       = each.value.namespace
  service_account = each.value.service_account
  role_arn        = aws_iam_role.controller[each.key].arn
  tags            = var.tags
}

resource "aws_iam_role_policy" "load_balancer_controller" {
  name   = "aws-load-balancer-controller"
  role   = aws_iam_role.controller["aws-load-balancer-controller"].id
  policy = data.aws_iam_policy_document.load_balancer_controller.json
}

resource "aws_iam_role_policy" "external_dns" {
  name   = "external-dns"
  role   = aws_iam_role.controller["external-dns"].id
  policy = data.aws_iam_policy_document.external_dns.json
}

# external-dns may change records in this environment's zone only; listing zones is
# account-wide by API design (it finds the zone by name), changing them is not.
data "aws_iam_policy_document" "external_dns" {
  statement {
    effect    = "Allow"
    actions   = ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:ListTagsForResources"]
    resources = [data.aws_route53_zone.env.arn]
  }

  statement {
    effect    = "Allow"
    actions   = ["route53:ListHostedZones"]
    resources = ["*"]
  }
}
