output "certificate_arn" {
  description = "The validated wildcard certificate *.<domain> (the controller discovers it by host name; output for reference)."
  value       = aws_acm_certificate_validation.wildcard.certificate_arn
}

output "zone_id" {
  description = "The environment's hosted zone (external-dns's only zone)."
  value       = data.aws_route53_zone.env.zone_id
}

output "role_arns" {
  description = "Role per controller (aws-load-balancer-controller, external-dns), bound by Pod Identity associations."
  value       = { for name, role in module.controller_role : name => role.role_arn }
}
