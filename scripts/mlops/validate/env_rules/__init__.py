"""Rule families that judge an environment as a whole, or the repository against it.

Owns `boundaries`, `build_tags`, `delivery`, `frontdoor` (MLOPS150-152), `gateway_target`,
`image_sources` (MLOPS140), `image_digests` (MLOPS143), `image_users`, `model_versions`,
`ownership`, `pod_identities` (MLOPS141-142), `reachability`, `references`, `workflow_roles`
and `generated` (the compiled workflows are in sync). It may import `mlops.conventions`,
`mlops.repository`, `mlops.rendering`, `mlops.canary`, `mlops.workflow_bridge` (inside a
function) and the rooms of `mlops.validate` below it (`objects`, `schema_checks`,
`object_rules`).
"""
