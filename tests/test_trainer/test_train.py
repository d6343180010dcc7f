"""torchrun with 2 CPU ranks against MLflow on SQLite and on a PostgreSQL-backed server, then the gate."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from mlops.conventions.registry_names import ATTEMPT_FOLDER
from support.trainer_runs import GIT_COMMIT, IMAGE_DIGEST, TINY_RUN, run, torchrun, trainer_env

pytestmark = pytest.mark.slow

STEPS = 8


def _train(tmp: Path, tracking_uri: str, *extra: str) -> dict[str, Any]:
    result_file = tmp / "result.json"
    done = run(
        torchrun(
            2,
            "trainer.train",
            *TINY_RUN,
            "--max-steps",
            str(STEPS),
            "--result-file",
            str(result_file),
            *extra,
        ),
        trainer_env(tracking_uri),
        tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(result_file.read_text())


@pytest.fixture(scope="module")
def sqlite_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("train-sqlite")
    uri = f"sqlite:///{tmp}/.mlops/mlflow.db"
    return tmp, uri, _train(tmp, uri)


def _client(uri: str) -> Any:
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri)


def _check_tracked(uri: str, result: dict[str, Any]) -> Any:
    """What every training run must leave in MLflow; returns the registered version."""
    client = _client(uri)
    run_ = client.get_run(result["run_id"])
    assert run_.info.status == "FINISHED"
    params = run_.data.params
    assert params["world_size"] == "2"
    assert params["max_steps"] == str(STEPS)
    assert params["base_model"] == "tiny"
    assert params["dataset_uri"] == "synthetic"
    assert len(params["dataset_sha256"]) == 64
    assert run_.data.tags["git_commit"] == GIT_COMMIT
    assert run_.data.tags["image_digest"] == IMAGE_DIGEST

    losses = client.get_metric_history(result["run_id"], "loss")
    assert sorted(m.step for m in losses) == list(range(1, STEPS + 1))
    by_step = {m.step: m.value for m in losses}
    assert by_step[STEPS] < by_step[1], by_step
    assert result["final_step"] == STEPS
    assert result["final_loss"] == pytest.approx(by_step[STEPS])
    throughput = client.get_metric_history(result["run_id"], "tokens_per_second")
    assert len(throughput) == STEPS and all(m.value > 0 for m in throughput)

    inputs = run_.inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.digest == result["dataset_hash"] == params["dataset_sha256"][:32]
    assert [t.value for t in inputs[0].tags if t.key == "mlflow.data.context"] == ["training"]

    # One attempt uploaded: its folder and its manifest beside it, under the run's `model/`.
    (attempt,) = [a.path for a in client.list_artifacts(result["run_id"], "model") if a.is_dir]
    assert ATTEMPT_FOLDER.fullmatch(attempt.removeprefix("model/")), attempt
    assert {a.path for a in client.list_artifacts(result["run_id"], "model")} == {
        attempt,
        f"{attempt}.sha256sums",
    }
    assert result["artifact_uri"].endswith(f"/artifacts/{attempt}")
    artifacts = {a.path for a in client.list_artifacts(result["run_id"], attempt)}
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    ):
        assert f"{attempt}/{name}" in artifacts, artifacts

    version = client.get_model_version_by_alias("support-chat", "candidate")
    assert str(version.version) == result["model_version"]
    assert version.run_id == result["run_id"]
    assert version.tags["git_commit"] == GIT_COMMIT
    assert version.tags["image_digest"] == IMAGE_DIGEST
    assert version.tags["dataset_hash"] == result["dataset_hash"]
    assert version.source == result["artifact_uri"]
    # The weights digest: the manifest the trainer stored beside the weights hashes to the tag,
    # and recomputing it from the stored files gives the same manifest (what the vLLM fetch does).
    import mlflow.artifacts
    from trainer import weights_manifest

    assert version.tags["weights_digest"] == result["weights_digest"]
    scratch = Path(tempfile.mkdtemp(prefix="weights-"))
    stored = Path(
        mlflow.artifacts.download_artifacts(
            run_id=result["run_id"], artifact_path=attempt, dst_path=str(scratch), tracking_uri=uri
        )
    )
    manifest = Path(
        mlflow.artifacts.download_artifacts(
            run_id=result["run_id"],
            artifact_path=f"{attempt}.sha256sums",
            dst_path=str(scratch),
            tracking_uri=uri,
        )
    ).read_text()
    assert weights_manifest.digest(manifest) == version.tags["weights_digest"]
    assert weights_manifest.manifest(stored) == manifest
    assert "  model.safetensors\n" in manifest and "  config.json\n" in manifest
    return version


def _reload_and_generate(model_dir: Path) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi, my order has not arrived yet."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    # The chat template emits BOS itself; encoding must not add a second one.
    ids = prompt["input_ids"][0].tolist()
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    out = model.generate(**prompt, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert out.shape[1] == len(ids) + 8
    return tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)


def test_ddp_run_is_tracked_and_registered(sqlite_run: tuple[Path, str, dict[str, Any]]) -> None:
    _tmp, uri, result = sqlite_run
    _check_tracked(uri, result)
    assert result["tracking_uri"] == uri
    assert Path(result["artifact_uri"]).is_dir()


def test_saved_model_reloads_and_generates(sqlite_run: tuple[Path, str, dict[str, Any]]) -> None:
    _tmp, _uri, result = sqlite_run
    # Eight steps teach it little beyond line breaks, but it is text decoded from new tokens.
    assert _reload_and_generate(Path(result["artifact_uri"]))


def test_gate_passes_and_fails_on_threshold(
    sqlite_run: tuple[Path, str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainer import evaluate

    tmp, uri, result = sqlite_run
    monkeypatch.chdir(tmp)
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    base = ["--tracking-uri", uri, "--model-name", "support-chat", "--work-dir", str(tmp / "eval")]

    assert (
        evaluate.main(
            [*base, "--model-alias", "candidate", "--threshold", "1e6", "--result-file", "pass.json"]
        )
        == 0
    )
    passed = json.loads((tmp / "pass.json").read_text())
    assert passed["gate_passed"] is True and passed["model_version"] == result["model_version"]
    ppl = passed["eval_perplexity"]
    assert 1.0 < ppl < 1e6

    client = _client(uri)
    tags = client.get_model_version("support-chat", result["model_version"]).tags
    assert tags["gate_metric"] == "eval_perplexity"
    assert tags["gate_passed"] == "true"
    assert float(tags["gate_value"]) == pytest.approx(ppl, rel=1e-5)
    assert float(tags["gate_threshold"]) == 1e6
    logged = client.get_metric_history(result["run_id"], "eval_perplexity")
    assert logged[-1].value == pytest.approx(ppl)

    # Same version and data, a threshold below its perplexity: the gate says no.
    code = evaluate.main([*base, "--model-version", result["model_version"], "--threshold", str(ppl / 2)])
    assert code == 1
    tags = client.get_model_version("support-chat", result["model_version"]).tags
    assert tags["gate_passed"] == "false"
    assert float(tags["gate_threshold"]) == pytest.approx(ppl / 2)


def test_postgres_backed_server(
    tmp_path: Path, mlflow_postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same run against `mlflow server` on PostgreSQL with served artifacts, as in the cluster."""
    from trainer import evaluate

    result = _train(tmp_path, mlflow_postgres)
    version = _check_tracked(mlflow_postgres, result)
    assert version.source.startswith("mlflow-artifacts:/")

    import mlflow

    model_dir = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(tmp_path / "dl"))
    )
    assert _reload_and_generate(model_dir)

    monkeypatch.chdir(tmp_path)
    code = evaluate.main(
        ["--tracking-uri", mlflow_postgres, "--threshold", "1e6", "--work-dir", str(tmp_path / "eval")]
    )
    assert code == 0
    tags = _client(mlflow_postgres).get_model_version("support-chat", version.version).tags
    assert tags["gate_passed"] == "true"
