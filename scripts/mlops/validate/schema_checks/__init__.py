"""Schema checks: Kubernetes and CRD schemas, their CEL rules, and the packaged CRDs.

Owns `crds` (the CRD index), `cel` (x-kubernetes-validations), `schemas` (strict validation
of one object), `packaged_crds` (`mlops crds`: the schemas shipped in the package) and
`deciders` (the distributions whose versions key the caches of check results). It
may import `mlops.conventions`, `mlops.rendering` and `mlops.validate.objects`.
"""
