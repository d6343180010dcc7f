# The roles, policies and associations moved into modules/pod-identity-role: these blocks move
# an existing state's objects to their new addresses instead of destroying the roles (and with
# them every running pod's credentials). moved blocks take no for_each, hence one per key.
# Keep them until every environment's state has been applied past this change.

moved {
  from = aws_iam_role.workload["mlflow"]
  to   = module.workload_role["mlflow"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.workload["mlflow"]
  to   = module.workload_role["mlflow"].aws_iam_role_policy.this["workload"]
}

moved {
  from = aws_eks_pod_identity_association.workload["mlflow"]
  to   = module.workload_role["mlflow"].aws_eks_pod_identity_association.this[0]
}

moved {
  from = aws_iam_role.workload["vllm"]
  to   = module.workload_role["vllm"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.workload["vllm"]
  to   = module.workload_role["vllm"].aws_iam_role_policy.this["workload"]
}

moved {
  from = aws_eks_pod_identity_association.workload["vllm"]
  to   = module.workload_role["vllm"].aws_eks_pod_identity_association.this[0]
}

moved {
  from = aws_iam_role.workload["train-and-promote"]
  to   = module.workload_role["train-and-promote"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.workload["train-and-promote"]
  to   = module.workload_role["train-and-promote"].aws_iam_role_policy.this["workload"]
}

moved {
  from = aws_eks_pod_identity_association.workload["train-and-promote"]
  to   = module.workload_role["train-and-promote"].aws_eks_pod_identity_association.this[0]
}

moved {
  from = aws_iam_role.workload["trainer"]
  to   = module.workload_role["trainer"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.workload["trainer"]
  to   = module.workload_role["trainer"].aws_iam_role_policy.this["workload"]
}

moved {
  from = aws_eks_pod_identity_association.workload["trainer"]
  to   = module.workload_role["trainer"].aws_eks_pod_identity_association.this[0]
}

moved {
  from = aws_iam_role.workload["kaniko"]
  to   = module.workload_role["kaniko"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.workload["kaniko"]
  to   = module.workload_role["kaniko"].aws_iam_role_policy.this["workload"]
}

moved {
  from = aws_eks_pod_identity_association.workload["kaniko"]
  to   = module.workload_role["kaniko"].aws_eks_pod_identity_association.this[0]
}

moved {
  from = aws_iam_role.workload["buildkit"]
  to   = module.workload_role["buildkit"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.workload["buildkit"]
  to   = module.workload_role["buildkit"].aws_iam_role_policy.this["workload"]
}

moved {
  from = aws_eks_pod_identity_association.workload["buildkit"]
  to   = module.workload_role["buildkit"].aws_eks_pod_identity_association.this[0]
}

moved {
  from = aws_iam_role.workload["git-bot"]
  to   = module.workload_role["git-bot"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.workload["git-bot"]
  to   = module.workload_role["git-bot"].aws_iam_role_policy.this["workload"]
}

moved {
  from = aws_eks_pod_identity_association.workload["git-bot"]
  to   = module.workload_role["git-bot"].aws_eks_pod_identity_association.this[0]
}

moved {
  from = aws_iam_role.workload["argo-server"]
  to   = module.workload_role["argo-server"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.workload["argo-server"]
  to   = module.workload_role["argo-server"].aws_iam_role_policy.this["workload"]
}

moved {
  from = aws_eks_pod_identity_association.workload["argo-server"]
  to   = module.workload_role["argo-server"].aws_eks_pod_identity_association.this[0]
}

moved {
  from = aws_iam_role.workload["external-secrets"]
  to   = module.workload_role["external-secrets"].aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.workload["external-secrets"]
  to   = module.workload_role["external-secrets"].aws_iam_role_policy.this["workload"]
}

moved {
  from = aws_eks_pod_identity_association.workload["external-secrets"]
  to   = module.workload_role["external-secrets"].aws_eks_pod_identity_association.this[0]
}
