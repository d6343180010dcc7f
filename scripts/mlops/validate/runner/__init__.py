"""The validation engine: render every environment, run every check, cache the results.

Owns `engine` (`mlops validate`), `env_checks` and `policies` (the lists of environment and
per-object checks it runs), `fresh_install_env` (a fresh install, checked with the engine's
schemas) and `result_cache`. It is the top room of `mlops.validate` and may import every
room below it, and `mlops.canary`.
"""
