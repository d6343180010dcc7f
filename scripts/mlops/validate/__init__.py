"""Render and strictly validate every environment: schemas, CEL rules, policies, coverage.

Rooms, each importing only those before it: `objects` (what rules read, and `Problem`),
`schema_checks`, `object_rules`, `env_rules`, `runner` (the engine).
"""
