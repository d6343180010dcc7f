"""Names with meaning in the MLflow registry: the trainer's alias and the evaluation gate's tags.

The trainer image carries only `images/trainer/trainer`, so it cannot import this module;
`trainer.options.DEFAULT_ALIAS` and the tags `trainer.evaluate` writes spell the same names,
and tests/promote/test_registry_names.py fails when the two drift apart. The aliases that mirror
a deployment (`<env>`, `<env>-canary`) are `mlops.conventions.deployment.Deployment.alias`.
"""

from __future__ import annotations

import re

CANDIDATE_ALIAS = "candidate"
"""The alias the trainer gives each version it registers; the workflow promotes what it names."""

GATE_PASSED_TAG = "gate_passed"
"""`true` when the version's evaluation passed its threshold; promote refuses any other value."""
GATE_METRIC_TAG = "gate_metric"
GATE_METRIC = "eval_perplexity"
"""The metric the evaluation step logs on the version's run (`trainer.tracking.GATE_METRIC`); lower passes."""
GATE_VALUE_TAG = "gate_value"
GATE_THRESHOLD_TAG = "gate_threshold"
GATE_TAGS: tuple[str, ...] = (GATE_METRIC_TAG, GATE_THRESHOLD_TAG, GATE_VALUE_TAG, GATE_PASSED_TAG)
"""Every tag the evaluation step writes on a model version."""

WEIGHTS_DIGEST_TAG = "weights_digest"
"""`sha256:<hex>` of the weights manifest the trainer wrote when it registered the version
(`trainer.weights_manifest.DIGEST_TAG`); promote copies it into the version file."""
WEIGHTS_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
"""The form of a weights digest, in the registry's tag and the version file's `weightsDigest`."""
