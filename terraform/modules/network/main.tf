# VPC across three AZs: public subnets hold NAT gateways and load balancers, private
# subnets hold nodes, pods and the database. Interface endpoints keep image pulls, STS,
# SQS (Karpenter interruptions) and Secrets Manager traffic off the NAT gateways.

locals {
  # /16 -> three /19 private subnets (pods take VPC IPs) and three /24 public subnets.
  private_subnets = [for i, _ in var.azs : cidrsubnet(var.cidr, 3, i)]
  public_subnets  = [for i, _ in var.azs : cidrsubnet(var.cidr, 8, 96 + i)]

  interface_endpoints = {
    ecr_api        = "ecr.api"
    ecr_dkr        = "ecr.dkr"
    sts            = "sts"
    sqs            = "sqs"
    ec2            = "ec2"
    eks            = "eks"
    eks_auth       = "eks-auth"
    secretsmanager = "secretsmanager"
    logs           = "logs"
    ssm            = "ssm"
    # Session Manager (the SSM tunnel of docs/first-apply.md) also needs these two:
    # https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html
    ssmmessages = "ssmmessages"
    ec2messages = "ec2messages"
  }
}

module "vpc" {
  #checkov:skip=CKV_TF_1:a registry module pinned to an exact released version; a commit-hash git source would bypass the registry and its version constraints
  source  = "terraform-aws-modules/vpc/aws"
  version = "6.0.1"

  name = var.name
  cidr = var.cidr
  azs  = var.azs

  private_subnets = local.private_subnets
  public_subnets  = local.public_subnets

  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway

  enable_dns_hostnames = true
  enable_dns_support   = true

  # The default security group allows all traffic between its members: empty it so
  # nothing lands in it by accident.
  manage_default_security_group  = true
  default_security_group_ingress = []
  default_security_group_egress  = []

  enable_flow_log                                 = true
  create_flow_log_cloudwatch_log_group            = true
  create_flow_log_cloudwatch_iam_role             = true
  flow_log_max_aggregation_interval               = 60
  flow_log_cloudwatch_log_group_retention_in_days = var.flow_log_retention_days

  public_subnet_tags = {
    "kubernetes.io/role/elb" = "1"
  }

  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = "1"
    # EC2NodeClass subnetSelectorTerms select on this tag.
    "karpenter.sh/discovery" = var.cluster_name
  }

  tags = var.tags
}

resource "aws_security_group" "endpoints" {
  name_prefix = "${var.name}-vpc-endpoints-"
  description = "HTTPS from inside the VPC to the interface endpoints"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description = "HTTPS from the VPC"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.cidr]
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = module.vpc.vpc_id
  service_name      = "com.amazonaws.${data.aws_region.current.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = module.vpc.private_route_table_ids

  tags = merge(var.tags, { Name = "${var.name}-s3" })
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_endpoints

  vpc_id              = module.vpc.vpc_id
  service_name        = "com.amazonaws.${data.aws_region.current.region}.${each.value}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = module.vpc.private_subnets
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

data "aws_region" "current" {}
