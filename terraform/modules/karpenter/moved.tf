# The controller's role, policy and association moved into modules/pod-identity-role: these
# blocks move an existing state's objects instead of destroying the role. Keep them until every
# environment's state has been applied past this change.

moved {
  from = aws_iam_role.controller
  to   = module.controller_role.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.controller
  to   = module.controller_role.aws_iam_role_policy.this["karpenter-controller"]
}

moved {
  from = aws_eks_pod_identity_association.controller
  to   = module.controller_role.aws_eks_pod_identity_association.this[0]
}
