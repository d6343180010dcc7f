"""Rule families that judge one rendered object at a time: pods, nodes, API use, sync.

Owns `pod_policies`, `pod_security`, `node_policies`, `device_plugin`, `fresh_install`,
`api_rules`, `sync_policies` and `sync_hooks`. It may import `mlops.conventions`,
`mlops.rendering` and `mlops.validate.objects`.
"""
