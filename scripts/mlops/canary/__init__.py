"""Canary analysis' data and arithmetic: the plan, the metrics, the statistics.

Owns `canary_plan` (a model's traffic steps and thresholds), `canary_metrics` (what the
gateway served per backend, and the verdict), `canary_stats` (confidence bounds) and
`prometheus` (the query client). Deciding and committing a verdict is the write path's
(`mlops.release.canary_analysis`). It may import `mlops.conventions`, `mlops.rendering` and
`mlops.validate.objects` (a plan's problems are validate's `Problem`).
"""
