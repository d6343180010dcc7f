"""Render and strictly validate every environment: schemas, CEL rules, policies, coverage."""
