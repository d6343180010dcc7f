"""Rule families that judge an environment as a whole, or the repository against it.

Owns `build_tags`, `delivery`, `gateway_target`, `image_sources`, `image_digests`,
`image_users`, `model_versions`, `ownership`, `references` and `generated` (the compiled
workflows are in sync). The trust boundaries (network, identities, sign-in) are
`mlops.validate.trust_rules`. It may import `mlops.conventions`,
`mlops.repository`, `mlops.rendering`, `mlops.canary`, `mlops.workflow_bridge` (inside a
function) and the rooms of `mlops.validate` below it (`objects`, `schema_checks`,
`object_rules`).
"""
