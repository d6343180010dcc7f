# The same state bucket as terraform/platform, its own key:
#   init -backend-config=../envs/<env>/backend.s3.tfbackend -backend-config=key=envs/<env>/argocd.tfstate
# (the later -backend-config wins). Its own state means a platform apply never refreshes an
# in-cluster resource, so it never needs to reach the API endpoint.
terraform {
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
