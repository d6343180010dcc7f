variable "cluster_name" {
  description = "Name of the EKS cluster, e.g. mlops-dev; also the value of the karpenter.sh/discovery tags."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the system node group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the control plane ENIs and the system node group."
  type        = list(string)
}

variable "service_ipv4_cidr" {
  description = "Range of the cluster's Service addresses; the API server's `kubernetes` Service is its first address, which every NetworkPolicy allowing API egress names (docs/security.md). Changing it replaces the cluster."
  type        = string
  default     = "172.20.0.0/16"

  validation {
    # EKS accepts a /12 to /24 inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 that does not
    # overlap the VPC (CreateCluster KubernetesNetworkConfigRequest.serviceIpv4Cidr).
    condition     = can(cidrhost(var.service_ipv4_cidr, 1)) && tonumber(split("/", var.service_ipv4_cidr)[1]) >= 12 && tonumber(split("/", var.service_ipv4_cidr)[1]) <= 24
    error_message = "service_ipv4_cidr must be a CIDR between /12 and /24, e.g. 172.20.0.0/16."
  }
}

variable "endpoint_public_access" {
  description = "Whether the API server endpoint is reachable from the internet (restricted to public_access_cidrs)."
  type        = bool
}

variable "public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public API endpoint when it is enabled."
  type        = list(string)
}

variable "private_access_cidrs" {
  description = "CIDRs that may reach the private API endpoint on 443 besides the cluster's own nodes (VPN client range, peered networks)."
  type        = list(string)
}

variable "private_access_security_group_ids" {
  description = "Security groups in the VPC whose members may reach the private API endpoint on 443 (a CI runner, a bastion)."
  type        = list(string)
}

variable "system_node_group" {
  description = "Size of the managed node group that runs the controllers (Argo CD, Karpenter, CoreDNS); workloads go to Karpenter nodes."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = number
  })
}

variable "admin_principal_arns" {
  description = "IAM principals (roles) granted cluster-admin through EKS access entries."
  type        = list(string)
}

variable "log_retention_days" {
  description = "Days the control plane logs are kept in CloudWatch Logs."
  type        = number
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
}

variable "addon_versions" {
  description = "Exact EKS add-on version per add-on (vpc-cni, kube-proxy, eks-pod-identity-agent, coredns, aws-ebs-csi-driver), e.g. v1.35.3-eksbuild.2: upgraded only by changing this value."
  type        = map(string)

  validation {
    condition = (
      toset(keys(var.addon_versions)) == toset(["vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns", "aws-ebs-csi-driver"])
      && alltrue([for version in values(var.addon_versions) : can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+-eksbuild\\.[0-9]+$", version))])
    )
    error_message = "addon_versions must pin exactly vpc-cni, kube-proxy, eks-pod-identity-agent, coredns and aws-ebs-csi-driver, each to a vX.Y.Z-eksbuild.N version (aws eks describe-addon-versions --kubernetes-version <version> --addon-name <name>)."
  }
}
