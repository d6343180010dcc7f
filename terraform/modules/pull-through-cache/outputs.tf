output "prefixes" {
  description = "Upstream registry => repository prefix in this account's registry (mlops validate's MLOPS140 reads the same map)."
  value       = { for prefix, url in local.upstreams : url => prefix }
}
