"""The registry names mlops reads are the ones the trainer writes (the trainer image cannot import mlops)."""

from __future__ import annotations

import ast
from pathlib import Path

from mlops.conventions import registry_names
from trainer import options

EVALUATE = Path(options.__file__).with_name("evaluate.py")


def _gate_tags_written_by_evaluate() -> set[str]:
    """Return the `gate_*` keys of the dict literals in trainer/evaluate.py that become version tags."""
    tree = ast.parse(EVALUATE.read_text())
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Call):
            target = node.iter.func.value if isinstance(node.iter.func, ast.Attribute) else None
            if isinstance(target, ast.Dict):  # for key, tag in {...}.items(): set_model_version_tag(...)
                keys |= {k.value for k in target.keys if isinstance(k, ast.Constant)}
    return keys


def test_trainer_registers_versions_under_the_candidate_alias() -> None:
    assert options.DEFAULT_ALIAS == registry_names.CANDIDATE_ALIAS


def test_evaluate_writes_every_gate_tag_promote_reads() -> None:
    assert _gate_tags_written_by_evaluate() == set(registry_names.GATE_TAGS)


def test_promote_reads_the_weights_digest_tag_the_trainer_writes() -> None:
    from trainer import weights_manifest

    assert weights_manifest.DIGEST_TAG == registry_names.WEIGHTS_DIGEST_TAG
    digest = weights_manifest.digest("0" * 64 + "  config.json\n")
    assert registry_names.WEIGHTS_DIGEST.fullmatch(digest)


def test_promote_and_validate_know_the_folders_the_trainer_uploads_weights_to() -> None:
    from trainer import tracking

    assert tracking.MODEL_ARTIFACT_PATH == registry_names.MODEL_ARTIFACT_PATH
    parent, _, attempt = tracking.new_attempt_path().rpartition("/")
    assert parent == registry_names.MODEL_ARTIFACT_PATH
    assert registry_names.ATTEMPT_FOLDER.fullmatch(attempt), attempt
    assert attempt.startswith(tracking.ATTEMPT_PREFIX)
    assert tracking.new_attempt_path() != tracking.new_attempt_path()
