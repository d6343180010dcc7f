"""Names with meaning in the MLflow registry: the trainer's alias, the gate's tags, the weights' folder.

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

MODEL_ARTIFACT_PATH = "model"
"""The run's artifact folder of the trainer's weights (`trainer.tracking.MODEL_ARTIFACT_PATH`). Each
attempt of a run that uploads them writes its own `model/attempt-<id>` folder and its manifest beside
it (`attempt-<id>.sha256sums`), and the version the trainer registers names that folder: a restarted
job never leaves an earlier attempt's files among the weights the model server fetches."""
ATTEMPT_FOLDER = re.compile(r"attempt-\d{8}T\d{6}Z-[0-9a-f]{8}")
"""One attempt's folder name (`trainer.tracking.new_attempt_path`): its upload's UTC time, 8 random hex."""
