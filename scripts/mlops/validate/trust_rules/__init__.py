"""Rule families that judge the trust boundaries of an environment: who may reach, run or sign in.

Owns `boundaries` (AppProjects, secret stores, privileged namespaces), `reachability` (the
NetworkPolicy matrix of docs/security.md), `workflow_roles` (the workflow and Argo Server
accounts against their terraform roles), `pod_identities` (terraform's Pod Identity
associations against the rendered ServiceAccounts), `frontdoor` (host names, TLS and sign-in of
every UI) and `canary_labels` (no scrape target can forge the series canary analysis trusts).
It may import what `mlops.validate.env_rules` may: `mlops.conventions`, `mlops.repository`,
`mlops.rendering`, `mlops.canary`, and the rooms of `mlops.validate` below it (`objects`,
`schema_checks`, `object_rules`); no rule room imports another.
"""
