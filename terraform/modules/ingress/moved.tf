# The controllers' roles, policies and associations moved into modules/pod-identity-role: these
# blocks move an existing state's objects instead of destroying the roles. moved blocks take
# no for_each, hence one per controller. Keep them until every environment's state has been
# applied past this change.

moved {
  from = aws_iam_role.controller["aws-load-balancer-controller"]
  to   = module.controller_role["aws-load-balancer-controller"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.load_balancer_controller
  to   = module.controller_role["aws-load-balancer-controller"].aws_iam_role_policy.this["aws-load-balancer-controller"]
}

moved {
  from = aws_eks_pod_identity_association.controller["aws-load-balancer-controller"]
  to   = module.controller_role["aws-load-balancer-controller"].aws_eks_pod_identity_association.this[0]
}

moved {
  from = aws_iam_role.controller["external-dns"]
  to   = module.controller_role["external-dns"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.external_dns
  to   = module.controller_role["external-dns"].aws_iam_role_policy.this["external-dns"]
}

moved {
  from = aws_eks_pod_identity_association.controller["external-dns"]
  to   = module.controller_role["external-dns"].aws_eks_pod_identity_association.this[0]
}
