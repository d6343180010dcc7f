# Fluent Bit's role, policy and association moved into modules/pod-identity-role: these blocks
# move an existing state's objects instead of destroying the role. Keep them until every
# environment's state has been applied past this change.

moved {
  from = aws_iam_role.fluent_bit
  to   = module.fluent_bit_role.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.fluent_bit
  to   = module.fluent_bit_role.aws_iam_role_policy.this["fluent-bit"]
}

moved {
  from = aws_eks_pod_identity_association.fluent_bit
  to   = module.fluent_bit_role.aws_eks_pod_identity_association.this[0]
}
