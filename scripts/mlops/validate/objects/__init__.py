"""What the validation rules read, and how they report: the bottom room of `mlops.validate`.

Owns `problems` (a problem found, and how it is located), `violations` (policy hints),
the YAML files of a checkout (`yaml_files`), manifests embedded in others (`embedded`),
pod specs and workloads in any kind (`pod_specs`, `workloads`), ApplicationSets and their Go
templates (`appsets`, `gotemplate`) and the objects of an environment, in the repository and
outside it (`env_objects`, `external_objects`). It may import `mlops.conventions` and
`mlops.rendering`, and no other room of `mlops.validate`.
"""
