# The front door's AWS side: the TLS certificate every host name of the environment uses,
# and the roles of the two controllers that build it from Ingresses (the AWS Load Balancer
# Controller: the ALB; external-dns: the records in the environment's hosted zone). Both
# roles reach their pods through EKS Pod Identity associations (the eks-pod-identity-agent
# add-on), so nothing in git names a role ARN.

data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition

  # ServiceAccounts the charts create (apps/upstream/<chart>/values-<env>.yaml), namespace -> name.
  controllers = {
    aws-load-balancer-controller = { namespace = "kube-system", service_account = "aws-load-balancer-controller" }
    external-dns                 = { namespace = "kube-system", service_account = "external-dns" }
  }

  # Controller -> its inline policy (named as the controller, as before the module).
  controller_policies = {
    aws-load-balancer-controller = data.aws_iam_policy_document.load_balancer_controller.json
    external-dns                 = data.aws_iam_policy_document.external_dns.json
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

# One Pod Identity role per controller (modules/pod-identity-role): the session tags EKS sets
# pin each to its controller's one ServiceAccount in this cluster, as every other role.
module "controller_role" {
  source   = "../pod-identity-role"
  for_each = local.controllers

  name            = "${var.name_prefix}-${each.key}"
  cluster_name    = var.cluster_name
  namespace       = each.value.namespace
  service_account = each.value.service_account
  inline_policies = { (each.key) = local.controller_policies[each.key] }
  tags            = var.tags
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
