"""The bridge to the Hera workflows: compile them to YAML, run their steps on this machine.

Owns `workflow_compiler` (`mlops workflows compile`) and `workflow_local` (`mlops workflows
run-local`), the only modules of mlops that import `workflows` when they load. It may import
`mlops.conventions` and `workflows`; no other room's module is imported by the workflows.
"""
