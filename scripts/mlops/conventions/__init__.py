"""The platform's conventions: names every other room, and the workflows, spell the same way.

Owns the errors the CLI reports (`errors`), the environments and the one check of a name
(`environments`), where things live in the repository (`paths`), a deployment's derived names
(`deployment`), the checks on values entering the write path (`write_inputs`), Argo's JSON
expression tags (`argo_json`), the pull-through cache's image names (`image_refs`) and the
MLflow registry's tag and alias names with the weights digest's form (`registry_names`). It is
the one room the Hera workflows (`workflows/`) may import, so it imports no other room of
mlops and never `workflows`: the compiler importing the workflows then closes no cycle.
"""
