"""The write path: every change the CLI or the git-bot makes to what an environment runs.

Owns `promotion`, `rollback`, `write_path` (the steps every write shares), the MLflow
`registry` (its names are `mlops.conventions.registry_names`), pull requests (`github`), image
digests (`image_pins`), deciding and committing a canary verdict (`canary_analysis`, which
rollback reuses) and the read-only view of the same state (`deployment_status`). It may
import `mlops.conventions`, `mlops.repository`, `mlops.rendering`, `mlops.canary` and
`mlops.validate` (image pins reuse its delivery rules).
"""
