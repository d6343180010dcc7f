# The add-ons' roles and policy attachments moved into modules/pod-identity-role: these blocks
# move an existing state's objects instead of destroying the roles (aws-node would lose its
# credentials). moved blocks take no for_each, hence one per add-on. Keep them until every
# environment's state has been applied past this change.

moved {
  from = aws_iam_role.addon["vpc-cni"]
  to   = module.addon_role["vpc-cni"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy_attachment.addon["vpc-cni"]
  to   = module.addon_role["vpc-cni"].aws_iam_role_policy_attachment.this["AmazonEKS_CNI_Policy"]
}

moved {
  from = aws_iam_role.addon["aws-ebs-csi-driver"]
  to   = module.addon_role["aws-ebs-csi-driver"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy_attachment.addon["aws-ebs-csi-driver"]
  to   = module.addon_role["aws-ebs-csi-driver"].aws_iam_role_policy_attachment.this["service-role/AmazonEBSCSIDriverPolicy"]
}
