"""The repository as git holds it: git operations and the model version files they carry.

Owns `gitops` (clean-tree checks, commits built off the checkout, safe pushes, files at a
commit), `model_version_file` (read, check and edit an overlay's model-version.yaml) and
`bootstrap` (whether a model folder lists the bootstrap Component, and removing it).
It may import only `mlops.conventions`.
"""
