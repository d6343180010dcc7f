"""Step functions that run as Argo script templates and, unchanged, in `mlops workflows run-local`.

Each function is self-contained (imports inside, no module globals): the compiled template
embeds its source and calls it with the step's inputs from environment variables.
"""

from __future__ import annotations

import inspect


def parameter_variable(name: str) -> str:
    """The environment variable that carries workflow parameter `name` into the check step."""
    return "PARAM_" + name.upper().replace("-", "_")


def check_parameters(patterns: str) -> None:
    """Fail the run unless every workflow parameter matches its pattern in full; the run's first step.

    `patterns` is a JSON object `{name: regex}`; each value is read from the environment
    variable `parameter_variable(name)` names (Argo writes an env value as one string, whatever
    it holds). Every bad value is named in one message, before anything is built or created.
    """
    import json
    import os
    import re
    import sys
    import unicodedata

    problems = []
    for name, pattern in json.loads(patterns).items():
        value = os.environ.get("PARAM_" + name.upper().replace("-", "_"), "")
        control = any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)
        if control or re.fullmatch(pattern, value) is None:
            shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
            problems.append(f"parameter {name}={shown} does not match {pattern}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        raise SystemExit(f"{len(problems)} workflow parameter(s) refused: nothing was built or created")
    print(f"{len(json.loads(patterns))} workflow parameters checked")


def training_result(
    model_name: str, commit: str, mlflow_tracking_uri: str, mlflow_ui_url: str, output_dir: str = ""
) -> dict[str, str]:
    """Find the model version the training step registered and link its MLflow run.

    The trainer gives its new version the alias `candidate`; the workflow holds a mutex per
    model, so the alias points at this run's version. The version's `git_commit` tag must be
    the commit the run trained (when one is given), else the step fails rather than gate or
    promote somebody else's model. With `output_dir`, each value is also written to a file
    of its name there (Argo reads output parameters from files).
    """
    import os

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_tracking_uri)
    version = client.get_model_version_by_alias(model_name, "candidate")
    trained_commit = (version.tags or {}).get("git_commit", "")
    if commit and trained_commit != commit:
        raise SystemExit(
            f"registered model {model_name} version {version.version} (alias candidate) was trained "
            f"from commit {trained_commit or '(no git_commit tag)'}, not {commit}: another run moved "
            "the alias; start the workflow again"
        )
    run = client.get_run(version.run_id)
    result = {
        "run-id": version.run_id,
        "model-version": str(version.version),
        "mlflow-run-url": (
            f"{mlflow_ui_url.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{version.run_id}"
        ),
    }
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        for key, value in result.items():
            with open(os.path.join(output_dir, key), "w", encoding="utf-8") as out:
                out.write(value)
    for key, value in result.items():
        print(f"{key}: {value}")
    return result


def report_outcome(workflow: str, status: str, failures: str, mlflow_run_url: str) -> str:
    """Print the outcome of a run: its status, each failed step with its message, the MLflow run.

    `failures` is Argo's `{{workflow.failures}}` (a JSON list of failed nodes, empty when none).
    """
    import json

    lines = [f"workflow {workflow}: {status}"]
    try:
        failed = json.loads(failures) if failures.strip() else []
    except json.JSONDecodeError:
        failed = []
    for node in failed if isinstance(failed, list) else []:
        name = node.get("displayName") or node.get("name", "?")
        lines.append(f"failed step {name}: {node.get('message', '').strip() or node.get('phase', 'Failed')}")
    lines.append(
        f"MLflow run: {mlflow_run_url}"
        if mlflow_run_url.strip()
        else "MLflow run: none (training did not finish)"
    )
    text = "\n".join(lines)
    print(text)
    return text


def script_source(function: object, env_arguments: dict[str, str]) -> str:
    """Return a script that defines `function` and calls it with arguments read from environment variables.

    Args:
        function: one of this module's step functions.
        env_arguments: `{argument name: environment variable}`.
    """
    call = ", ".join(f"{arg}=os.environ[{env!r}]" for arg, env in env_arguments.items())
    name = function.__name__  # type: ignore[attr-defined]
    return f"import os\n\n{inspect.getsource(function)}\n\n{name}({call})\n"  # type: ignore[arg-type]
