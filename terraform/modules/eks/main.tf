# EKS control plane, the managed system node group, the add-ons (with their Pod Identity
# roles) and access entries. Authentication is access entries only (API mode): no aws-auth
# ConfigMap to drift. No IAM OIDC provider: every role reaches its pods through EKS Pod
# Identity, none through IRSA.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  policy    = "arn:${local.partition}:iam::aws:policy"
}

# ---------------------------------------------------------------- encryption + logs

module "cluster_key" {
  source = "../kms-key"

  alias       = "${var.cluster_name}-eks"
  description = "${var.cluster_name}: envelope encryption of Kubernetes secrets and control plane logs"
  service_principals = {
    CloudWatchLogsEncrypts = {
      service = "logs.${data.aws_region.current.id}.amazonaws.com"
      actions = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      conditions = [{
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:${local.partition}:logs:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:log-group:/aws/eks/${var.cluster_name}/*"]
      }]
    }
  }
  tags = var.tags
}

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "cluster" {
  # EKS writes to this fixed name; creating it first sets retention and encryption.
  name              = "/aws/eks/${var.cluster_name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.cluster_key.arn
  tags              = var.tags
}

# ---------------------------------------------------------------- control plane

data "aws_iam_policy_document" "eks_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = "${var.cluster_name}-cluster"
  assume_role_policy = data.aws_iam_policy_document.eks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "${local.policy}/AmazonEKSClusterPolicy"
}

# EKS encrypts Secrets through grants it creates as the cluster role.
data "aws_iam_policy_document" "cluster_encryption" {
  statement {
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey", "kms:CreateGrant"]
    resources = [module.cluster_key.arn]
  }
}

resource "aws_iam_role_policy" "cluster_encryption" {
  name   = "secrets-encryption"
  role   = aws_iam_role.cluster.id
  policy = data.aws_iam_policy_document.cluster_encryption.json
}

resource "aws_eks_cluster" "this" {
  #checkov:skip=CKV_AWS_39:public access is a per-env input: prod keeps the endpoint private, dev opens it to public_access_cidrs only
  name     = var.cluster_name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  vpc_config {
    subnet_ids              = var.subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = var.endpoint_public_access
    public_access_cidrs     = var.endpoint_public_access ? var.public_access_cidrs : null
  }

  # Pinned rather than left to EKS (which picks 10.100.0.0/16 or 172.20.0.0/16 from the VPC's
  # range): the `kubernetes` Service is the first address of this range, and the VPC CNI's
  # network policy agent matches egress against that Service address before DNAT
  # (aws/amazon-network-policy-controller-k8s pkg/resolvers/endpoints.go,
  # getMatchingServiceClusterIPs), so every NetworkPolicy that lets a pod reach the API
  # server names it (docs/security.md, peer api-server; MLOPS080 reads this variable).
  kubernetes_network_config {
    service_ipv4_cidr = var.service_ipv4_cidr
  }

  access_config {
    authentication_mode = "API"
    # The principals that administer the cluster are listed explicitly (access entries
    # below); whoever happens to run `apply` gets nothing implicit.
    bootstrap_cluster_creator_admin_permissions = false
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = module.cluster_key.arn
    }
  }

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  tags = var.tags

  depends_on = [
    aws_iam_role_policy_attachment.cluster,
    aws_iam_role_policy.cluster_encryption,
    aws_cloudwatch_log_group.cluster,
  ]
}

# Karpenter's EC2NodeClass selects security groups by this tag; the cluster security
# group is the one EKS attaches to every node and to the control plane ENIs.
resource "aws_ec2_tag" "cluster_security_group_discovery" {
  resource_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  key         = "karpenter.sh/discovery"
  value       = var.cluster_name
}

# The private endpoint answers only to what the cluster security group admits: its own
# members (nodes, control plane ENIs) and these. Without them nothing outside the nodes
# reaches a private-only API (prod), terraform/argocd included.
resource "aws_vpc_security_group_ingress_rule" "api_from_cidrs" {
  for_each = toset(var.private_access_cidrs)

  security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  description       = "EKS API from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
  tags              = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "api_from_security_groups" {
  for_each = toset(var.private_access_security_group_ids)

  security_group_id            = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  description                  = "EKS API from members of ${each.value}"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value
  tags                         = var.tags
}

# ---------------------------------------------------------------- access entries

resource "aws_eks_access_entry" "admin" {
  for_each = toset(var.admin_principal_arns)

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value
  type          = "STANDARD"
  tags          = var.tags
}

resource "aws_eks_access_policy_association" "admin" {
  for_each = toset(var.admin_principal_arns)

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_eks_access_entry.admin[each.key].principal_arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }
}

# ---------------------------------------------------------------- system node group

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "system_node" {
  name               = "${var.cluster_name}-system-node"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "system_node" {
  # The CNI policy is not here: aws-node gets it through its own Pod Identity role.
  for_each = toset(["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonSSMManagedInstanceCore"])

  role       = aws_iam_role.system_node.name
  policy_arn = "${local.policy}/${each.value}"
}

resource "aws_launch_template" "system" {
  name_prefix = "${var.cluster_name}-system-"
  description = "System node group: IMDSv2 only, encrypted gp3 root volume"

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.system_node_group.disk_size_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.cluster_name}-system" })
  }

  tags = var.tags
}

resource "aws_eks_node_group" "system" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "system"
  node_role_arn   = aws_iam_role.system_node.arn
  subnet_ids      = var.subnet_ids
  version         = var.kubernetes_version
  ami_type        = "AL2023_x86_64_STANDARD"
  capacity_type   = "ON_DEMAND"
  instance_types  = var.system_node_group.instance_types

  launch_template {
    id      = aws_launch_template.system.id
    version = aws_launch_template.system.latest_version
  }

  scaling_config {
    min_size     = var.system_node_group.min_size
    max_size     = var.system_node_group.max_size
    desired_size = var.system_node_group.desired_size
  }

  update_config {
    max_unavailable = 1
  }

  labels = {
    "mlops.platform/node-group" = "system"
  }

  tags = var.tags

  # No cluster autoscaler on this group (Karpenter scales the workload nodes), so the
  # desired size stays what terraform.tfvars says.
  # The node role has no AmazonEKS_CNI_Policy: aws-node gets its permissions from the
  # vpc-cni add-on's Pod Identity role, so the add-ons (and that role's policy) must exist before
  # the first node, or its aws-node cannot assign addresses and the node never turns Ready
  # (terraform-aws-modules/terraform-aws-eks: addons with before_compute = true,
  # https://docs.aws.amazon.com/eks/latest/userguide/cni-iam-role.html).
  depends_on = [
    aws_iam_role_policy_attachment.system_node,
    module.addon_role,
    aws_eks_addon.before_nodes,
  ]
}

# ---------------------------------------------------------------- add-ons

# The add-ons' roles: EKS Pod Identity (modules/pod-identity-role), associated through each
# aws_eks_addon below rather than by the module
# (https://docs.aws.amazon.com/eks/latest/userguide/add-ons-iam.html: "The recommended way";
# cni-iam-role.html: the VPC CNI supports Pod Identity). The agent is an add-on installed
# before the nodes too, a hostNetwork DaemonSet, so aws-node finds it on the node's first boot.
module "addon_role" {
  source   = "../pod-identity-role"
  for_each = local.addon_service_accounts

  name                = "${var.cluster_name}-${each.key}"
  cluster_name        = var.cluster_name
  namespace           = "kube-system"
  service_account     = each.value.service_account
  managed_policy_arns = { (each.value.policy) = "${local.policy}/${each.value.policy}" }
  associate           = false
  tags                = var.tags
}

locals {
  # Add-ons that call AWS APIs get their own Pod Identity role instead of borrowing the node's.
  addon_service_accounts = {
    vpc-cni            = { service_account = "aws-node", policy = "AmazonEKS_CNI_Policy" }
    aws-ebs-csi-driver = { service_account = "ebs-csi-controller-sa", policy = "service-role/AmazonEBSCSIDriverPolicy" }
  }

  # Every add-on at the version envs/<env>/terraform.tfvars pins (var.addon_versions): a
  # version resolved at plan time (most_recent) would upgrade vpc-cni in prod on any apply.
  # Add-ons installed before the nodes exist (networking, identity) and after (the
  # ones that run Deployments and would otherwise wait on a node).
  addons_before_nodes = ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"]
  addons_after_nodes  = ["coredns", "aws-ebs-csi-driver"]
  # The VPC CNI enforces NetworkPolicies only when asked (its network policy agent);
  # without it every policy in base/platform is accepted and ignored (docs/security.md).
  # https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html
  addon_configuration = {
    vpc-cni = jsonencode({ enableNetworkPolicy = "true" })
  }
}

resource "aws_eks_addon" "before_nodes" {
  for_each = toset(local.addons_before_nodes)

  cluster_name  = aws_eks_cluster.this.name
  addon_name    = each.value
  addon_version = var.addon_versions[each.value]
  dynamic "pod_identity_association" {
    for_each = contains(keys(local.addon_service_accounts), each.value) ? [local.addon_service_accounts[each.value]] : []
    content {
      role_arn        = module.addon_role[each.value].role_arn
      service_account = pod_identity_association.value.service_account
    }
  }
  configuration_values        = lookup(local.addon_configuration, each.value, null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
  tags                        = var.tags
}

resource "aws_eks_addon" "after_nodes" {
  for_each = toset(local.addons_after_nodes)

  cluster_name  = aws_eks_cluster.this.name
  addon_name    = each.value
  addon_version = var.addon_versions[each.value]
  dynamic "pod_identity_association" {
    for_each = contains(keys(local.addon_service_accounts), each.value) ? [local.addon_service_accounts[each.value]] : []
    content {
      role_arn        = module.addon_role[each.value].role_arn
      service_account = pod_identity_association.value.service_account
    }
  }
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
  tags                        = var.tags

  depends_on = [aws_eks_node_group.system]
}
