"""Rendering and diffing the repository: the one render path and what reads its output.

Owns YAML loading (`fast_yaml`), `kustomize`, the content-addressed `build_cache`, `render`,
`manifest_diff` (what a change does to the rendered manifests), `vllm_args` (the vLLM
command line a rendered Deployment gives), `terraform_hcl` (terraform read with
python-hcl2) and `pod_identity` (the EKS Pod Identity associations terraform's modules make,
read from that HCL; MLOPS141). It may import `mlops.conventions` and `mlops.repository`.
"""
