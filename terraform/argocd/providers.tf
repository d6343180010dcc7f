# Both Kubernetes providers authenticate with a short-lived token from the AWS CLI, so no
# kubeconfig or static credential is involved. Through a tunnel (kubernetes_api_url) the
# API server's certificate still names the endpoint's host, hence tls_server_name.
locals {
  api_host        = coalesce(var.kubernetes_api_url, local.platform.cluster_endpoint)
  tls_server_name = var.kubernetes_api_url == null ? null : trimprefix(local.platform.cluster_endpoint, "https://")
  token_command   = ["eks", "get-token", "--cluster-name", local.platform.cluster_name, "--region", local.platform.aws_region]
}

provider "helm" {
  kubernetes = {
    host                   = local.api_host
    tls_server_name        = local.tls_server_name
    cluster_ca_certificate = base64decode(local.platform.cluster_certificate_authority_data)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = local.token_command
    }
  }
}

provider "kubernetes" {
  host                   = local.api_host
  tls_server_name        = local.tls_server_name
  cluster_ca_certificate = base64decode(local.platform.cluster_certificate_authority_data)
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = local.token_command
  }
}
