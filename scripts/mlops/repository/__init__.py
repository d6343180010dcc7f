"""The repository as git holds it: git operations and the model version files they carry.

Owns `gitops` (clean-tree checks, commits built off the checkout, safe pushes, files at a
commit) and `model_version_file` (read, check and edit an overlay's model-version.yaml).
It may import only `mlops.conventions`.
"""
