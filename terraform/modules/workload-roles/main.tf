# Pod Identity roles for exactly the ServiceAccounts of the platform that talk to AWS (the
# Karpenter controller's role lives in modules/karpenter). Each is one call of
# modules/pod-identity-role: associated with one ServiceAccount, trusting only sessions EKS
# tags with that namespace, ServiceAccount and cluster; here is what it may touch (only its own
# buckets, repositories or secrets).
# Also here: the Secrets Manager secrets that people fill by hand (git-bot token,
# gateway API keys) -- created empty, so their names and encryption are fixed in code.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.id

  # ServiceAccount name -> namespace: one Pod Identity association each. The role is
  # <name_prefix>-<ServiceAccount name>; `mlops validate` (MLOPS141) checks this map against
  # the rendered ServiceAccounts and the pods that call AWS.
  service_accounts = {
    "mlflow"            = "mlflow"
    "vllm"              = "models"
    "train-and-promote" = "argo"
    "trainer"           = "argo"
    "kaniko"            = "argo"
    "buildkit"          = "buildkit"
    "git-bot"           = "argo"
    "argo-server"       = "argo"
    "external-secrets"  = "external-secrets"
  }

  # Namespace -> the secrets mlops/<env>/<name> its ClusterSecretStore aws-secrets-manager-<ns>
  # may read (base/platform/clustersecretstore.yaml; docs/security.md, Secrets).
  secret_readers = {
    argo       = ["git-bot-token", "mlflow-trainer", "mlflow-git-bot", "oidc-argo-workflows"]
    buildkit   = ["git-bot-token"]
    gateway    = ["gateway-api-keys", "vllm-api-key"]
    mlflow     = ["mlflow-db", "mlflow-auth"]
    models     = ["vllm-api-key", "mlflow-git-bot"]
    monitoring = ["alertmanager-receivers", "grafana-admin", "oidc-grafana"]
  }

  # Filled by hand once per environment: tokens and receiver keys no file may hold.
  hand_filled_secrets = [
    "git-bot-token", "gateway-api-keys", "vllm-api-key", "alertmanager-receivers", "grafana-admin",
    # MLflow's auth app: its config (auth_uri, admin_password, flask_secret_key) and the two logins
    "mlflow-auth", "mlflow-trainer", "mlflow-git-bot",
    # The front door's OIDC clients (client-id, client-secret) from the identity provider (docs/access.md)
    "oidc-argo-workflows", "oidc-grafana",
  ]

  bucket = var.bucket_arns

  s3_list  = ["s3:ListBucket", "s3:GetBucketLocation"]
  s3_read  = ["s3:GetObject", "s3:GetObjectVersion"]
  s3_write = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
  kms_read = ["kms:Decrypt", "kms:DescribeKey"]
  kms_rw   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]

  # Every ServiceAccount that runs workflow pods: Argo's wait sidecar uploads each pod's
  # log (archiveLogs) and outputs to the argo-artifacts bucket with the pod's own Pod
  # Identity role (useSDKCreds), so each such role may write there and use the data key that
  # encrypts the bucket; without it a step whose container succeeded ends in Error.
  # `mlops validate` (MLOPS016) checks this against the workflow templates, statement by
  # statement: keep them written out (WriteWorkflowLogs, WorkflowLogKeys).

  # ServiceAccount -> IAM statements. git-bot calls no AWS API of its own: it pushes to
  # git with a token from an ExternalSecret; its role only uploads its workflow logs.
  statements = {
    "mlflow" = [
      { sid = "ListArtifacts", actions = local.s3_list, resources = [local.bucket["mlflow-artifacts"]] },
      { sid = "ReadWriteArtifacts", actions = concat(local.s3_read, local.s3_write), resources = ["${local.bucket["mlflow-artifacts"]}/*"] },
      { sid = "ArtifactKeys", actions = local.kms_rw, resources = [var.data_kms_key_arn] },
    ]
    "vllm" = [
      { sid = "ListWeights", actions = local.s3_list, resources = [local.bucket["model-weights"], local.bucket["mlflow-artifacts"]] },
      { sid = "ReadWeights", actions = local.s3_read, resources = ["${local.bucket["model-weights"]}/*", "${local.bucket["mlflow-artifacts"]}/*"] },
      { sid = "WeightKeys", actions = local.kms_read, resources = [var.data_kms_key_arn] },
    ]
    "train-and-promote" = [
      { sid = "ListWorkflowArtifacts", actions = local.s3_list, resources = [local.bucket["argo-artifacts"]] },
      { sid = "ReadWriteWorkflowArtifacts", actions = concat(local.s3_read, local.s3_write), resources = ["${local.bucket["argo-artifacts"]}/*"] },
      { sid = "WorkflowArtifactKeys", actions = local.kms_rw, resources = [var.data_kms_key_arn] },
    ]
    "trainer" = [
      { sid = "ListInputsAndArtifacts", actions = local.s3_list, resources = [local.bucket["datasets"], local.bucket["model-weights"], local.bucket["mlflow-artifacts"]] },
      { sid = "ReadInputs", actions = local.s3_read, resources = ["${local.bucket["datasets"]}/*", "${local.bucket["model-weights"]}/*"] },
      { sid = "ReadWriteArtifacts", actions = concat(local.s3_read, local.s3_write), resources = ["${local.bucket["mlflow-artifacts"]}/*"] },
      { sid = "DataKeys", actions = local.kms_rw, resources = [var.data_kms_key_arn] },
      { sid = "WriteWorkflowLogs", actions = local.s3_write, resources = ["${local.bucket["argo-artifacts"]}/*"] },
    ]
    # The image-exists check in argo (batch-get-image): it reads, the build pushes.
    "kaniko" = [
      { sid = "ReadPlatformImages", actions = ["ecr:BatchGetImage"], resources = values(var.ecr_repository_arns) },
      { sid = "WriteWorkflowLogs", actions = local.s3_write, resources = ["${local.bucket["argo-artifacts"]}/*"] },
      { sid = "WorkflowLogKeys", actions = local.kms_rw, resources = [var.data_kms_key_arn] },
    ]
    # The image build Jobs in namespace buildkit (not workflow pods: no workflow logs).
    "buildkit" = [
      { sid = "RegistryLogin", actions = ["ecr:GetAuthorizationToken"], resources = ["*"] },
      {
        sid = "PushPlatformImages"
        actions = [
          "ecr:BatchCheckLayerAvailability",
          "ecr:BatchGetImage",
          "ecr:CompleteLayerUpload",
          "ecr:GetDownloadUrlForLayer",
          "ecr:InitiateLayerUpload",
          "ecr:PutImage",
          "ecr:UploadLayerPart",
        ]
        resources = values(var.ecr_repository_arns)
      },
    ]
    "git-bot" = [
      { sid = "WriteWorkflowLogs", actions = local.s3_write, resources = ["${local.bucket["argo-artifacts"]}/*"] },
      { sid = "WorkflowLogKeys", actions = local.kms_rw, resources = [var.data_kms_key_arn] },
    ]
    # The Argo Server reads archived logs and output artifacts back from the bucket once
    # the pods are gone (useSDKCreds: its own Pod Identity role); it never writes there.
    # `mlops validate` (MLOPS016) checks the chart values' ServiceAccount against this.
    "argo-server" = [
      { sid = "ListWorkflowArtifacts", actions = local.s3_list, resources = [local.bucket["argo-artifacts"]] },
      { sid = "ReadWorkflowArtifacts", actions = local.s3_read, resources = ["${local.bucket["argo-artifacts"]}/*"] },
      { sid = "WorkflowArtifactKeys", actions = local.kms_read, resources = [var.data_kms_key_arn] },
    ]
    # The controller reads nothing itself: each namespace's ClusterSecretStore assumes that
    # namespace's reader role below (provider.aws.role), which reads only that namespace's keys.
    "external-secrets" = [
      { sid = "AssumeSecretReaders", actions = ["sts:AssumeRole"], resources = [for ns, _ in local.secret_readers : "arn:${local.partition}:iam::${local.account_id}:role/${var.name_prefix}-secrets-${ns}"] },
    ]
  }
}

data "aws_iam_policy_document" "workload" {
  #checkov:skip=CKV_AWS_356:the one "*" is ecr:GetAuthorizationToken, which has no resource-level permissions
  #checkov:skip=CKV_AWS_111:same: ecr:GetAuthorizationToken accepts only "*"; pushes are limited to the mlops/* repositories
  for_each = local.statements

  dynamic "statement" {
    for_each = each.value
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

# One Pod Identity role per ServiceAccount (modules/pod-identity-role: the trust, the role,
# its policy and the association), named <name_prefix>-<ServiceAccount>.
module "workload_role" {
  source   = "../pod-identity-role"
  for_each = local.service_accounts

  name            = "${var.name_prefix}-${each.key}"
  cluster_name    = var.cluster_name
  namespace       = each.value
  service_account = each.key
  inline_policies = { workload = data.aws_iam_policy_document.workload[each.key].json }
  tags            = var.tags
}

# ---------------------------------------------------------------- hand-filled secrets

module "secrets_key" {
  source = "../kms-key"

  alias       = "${var.name_prefix}-secrets"
  description = "${var.name_prefix}: hand-filled platform secrets (git-bot token, gateway API keys)"
  tags        = var.tags
}

resource "aws_secretsmanager_secret" "hand_filled" {
  #checkov:skip=CKV2_AWS_57:these are third-party tokens (git host, API keys) that AWS cannot rotate; docs/ says how to replace them
  for_each = toset(local.hand_filled_secrets)

  name        = "mlops/${var.env}/${each.key}"
  description = "Filled by hand with `aws secretsmanager put-secret-value`; read by External Secrets"
  kms_key_id  = module.secrets_key.arn
  tags        = var.tags
}

# ---------------------------------------------------------------- per-namespace secret readers

# One role per namespace whose ExternalSecrets need secrets: the external-secrets controller
# assumes it through that namespace's ClusterSecretStore, so an ExternalSecret in one
# namespace cannot read another namespace's secret (Secrets Manager ARNs end in -XXXXXX).
# The controller's own session comes from Pod Identity, whose session tags are transitive
# (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html): the chained AssumeRole
# carries them on, which the reader's trust must allow with sts:TagSession.
data "aws_iam_policy_document" "secret_reader_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "AWS"
      identifiers = [module.workload_role["external-secrets"].role_arn]
    }
  }
}

resource "aws_iam_role" "secret_reader" {
  for_each = local.secret_readers

  name                 = "${var.name_prefix}-secrets-${each.key}"
  description          = "Reads the secrets of namespace ${each.key} for its ClusterSecretStore"
  assume_role_policy   = data.aws_iam_policy_document.secret_reader_assume.json
  max_session_duration = 3600
  tags                 = merge(var.tags, { "kubernetes-namespace" = each.key })
}

data "aws_iam_policy_document" "secret_reader" {
  for_each = local.secret_readers

  statement {
    sid       = "ReadNamespaceSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [for name in each.value : "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:mlops/${var.env}/${name}-*"]
  }
  statement {
    sid       = "DecryptPlatformSecrets"
    actions   = ["kms:Decrypt"]
    resources = concat([module.secrets_key.arn], var.secret_kms_key_arns)
  }
}

resource "aws_iam_role_policy" "secret_reader" {
  for_each = data.aws_iam_policy_document.secret_reader

  name   = "secrets"
  role   = aws_iam_role.secret_reader[each.key].id
  policy = each.value.json
}
