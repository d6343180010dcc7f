"""Local runs and the demo: the platform's loop on this machine.

Owns `demo` and `canary_demo` (`mlops demo`, `mlops demo --canary`), `local_servers`
(start, wait for, stop server processes) and `local_vllm` (vLLM's venv and server here).
It may import every room below `mlops.commands`: it drives the write path, validation and
the workflows' local run (`mlops.workflow_bridge`, inside a function).
"""
