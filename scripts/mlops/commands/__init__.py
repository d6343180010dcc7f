"""Sub-commands of the `mlops` CLI, one module each."""
