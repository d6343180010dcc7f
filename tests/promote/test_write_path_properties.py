"""Property-based tests of the write path: whatever the version, model name or free text, promote and
rollback exit 0 or 2, never with a traceback; on 2 nothing changed; no control character reaches
a file or a commit message.

Example counts stay small (each example that gets past the checks is a real commit and push);
`.venv/bin/python -m pytest tests/promote/test_write_path_properties.py --durations=0` shows the
cost.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mlops.cli import main
from mlops.conventions.deployment import Deployment
from mlops.conventions.errors import MlopsError
from mlops.conventions.write_inputs import check_trailer_value, control_characters
from mlops.repository.model_version_file import parse
from promote_support import MODEL, GitOpsRepo, RegistryHelper, git

pytestmark = pytest.mark.slow

# Characters that have broken commit messages and YAML before: line breaks of every kind,
# NUL, escape, separators, quotes, and trailer syntax.
_HOSTILE_CHARS = "\n\r\x00\x1b\t\x0b\x0c\x85\u2028\u2029\ufeff'\":# -/.\\{}"
_free_text = st.one_of(
    st.text(max_size=24),
    st.text(alphabet=st.sampled_from(_HOSTILE_CHARS + "abcVersion"), max_size=24),
    st.sampled_from(["wf-1\nVersion: 99", "wf\r\nPromoted-By: person", " wf", "wf ", "Model: x"]),
)
_versions = st.one_of(
    st.sampled_from(["2", "3", "1"]),
    st.from_regex(r"[0-9]{1,12}[\n ]?", fullmatch=True),
    st.text(max_size=12),
    st.integers(min_value=-5, max_value=2**63).map(str),
)
_models = st.one_of(
    st.just(MODEL),
    st.sampled_from([f"{MODEL}\n", f"{MODEL}-canary", "../dev/models/support-chat", "Support-Chat", ""]),
    st.text(max_size=16),
)
DEV_FILE = Deployment("dev", MODEL).version_file
_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI time and results are stable
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _state(gitops: GitOpsRepo, clone: Path, registry: RegistryHelper) -> tuple[object, ...]:
    return (
        gitops.refs(),
        git(clone, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"),
        git(clone, "rev-parse", "HEAD"),
        git(clone, "status", "--porcelain", "--untracked-files=all"),
        registry.snapshot(),
    )


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse's own usage errors exit 2 as well
        rc = int(exc.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    event(f"{args[0]} exit {rc}")  # --hypothesis-show-statistics: how many examples got through
    return rc, err


def _no_control_characters_on_the_remote(gitops: GitOpsRepo) -> None:
    """Every commit message and file that a promote or rollback wrote is free of control characters."""
    for ref in git(gitops.remote, "for-each-ref", "--format=%(refname)").split():
        message = git(gitops.remote, "log", "-1", "--format=%B", ref)
        assert control_characters(message.replace("\n", "")) == [], (ref, message)
        changed = git(gitops.remote, "show", "--name-only", "--format=", ref).split()
        for path in changed:
            text = git(gitops.remote, "show", f"{ref}:{path}")
            assert control_characters(text.replace("\n", "")) == [], (ref, path)


@pytest.fixture
def world(
    gitops: GitOpsRepo, clone: Path, registry: RegistryHelper, monkeypatch: pytest.MonkeyPatch
) -> tuple[GitOpsRepo, Path, RegistryHelper]:
    for _ in range(3):
        registry.register()  # 1 (deployed), 2 and 3: gate passed
    monkeypatch.setenv("MLOPS_REPO", str(clone))
    return gitops, clone, registry


@st.composite
def _promote_args(draw: st.DrawFn) -> list[str]:
    """A promote that would succeed, with at most one value replaced by a generated one.

    One field at a time keeps a fair share of examples getting through to a real commit, and a
    failure names the field that caused it.
    """
    values = {
        "env": draw(st.sampled_from(["dev", "prod"])),
        "model": MODEL,
        "version": draw(st.sampled_from(["2", "3"])),
        "workflow": "wf-1",
    }
    field = draw(st.sampled_from([None, "env", "model", "version", "workflow"]))
    generated = {"env": st.sampled_from(["dev\n", " dev", "Dev", "staging", ""]), "model": _models,
                 "version": _versions, "workflow": _free_text}  # fmt: skip
    if field is not None:
        values[field] = draw(generated[field])
    return [f"--{key}={value}" for key, value in values.items()]


@_SETTINGS
@given(flags=_promote_args())
def test_promote_exits_0_or_2_and_2_changes_nothing(
    world: tuple[GitOpsRepo, Path, RegistryHelper],
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
) -> None:
    gitops, clone, registry = world
    before = _state(gitops, clone, registry)
    args = ["promote", *flags]

    rc, err = _run(args, capsys)

    assert rc in (0, 2), err
    if rc == 2:
        assert _state(gitops, clone, registry) == before, err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    _no_control_characters_on_the_remote(gitops)


@_SETTINGS
@given(to=st.one_of(st.none(), _versions), workflow=st.one_of(st.just("wf-1"), _free_text))
def test_rollback_exits_0_or_2_and_2_changes_nothing(
    world: tuple[GitOpsRepo, Path, RegistryHelper],
    capsys: pytest.CaptureFixture[str],
    to: str | None,
    workflow: str | None,
) -> None:
    gitops, clone, registry = world
    current = parse(git(gitops.remote, "show", f"main:{DEV_FILE}"), DEV_FILE).version
    if current == "1":  # walked all the way back: promote again so the next rollback has a way back
        for version in ("2", "3"):
            assert _run(["promote", "--env=dev", f"--model={MODEL}", f"--version={version}"], capsys)[0] == 0
    before = _state(gitops, clone, registry)
    args = ["rollback", "--env=dev", f"--model={MODEL}"]
    args += [f"--to={to}"] if to is not None else []
    args += [f"--workflow={workflow}"] if workflow is not None else []

    rc, err = _run(args, capsys)

    assert rc in (0, 2), err
    if rc == 2:
        assert _state(gitops, clone, registry) == before, err
    _no_control_characters_on_the_remote(gitops)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(value=_free_text)
def test_an_accepted_trailer_value_is_read_back_by_git_as_exactly_that_one_trailer(value: str) -> None:
    try:
        check_trailer_value(value, "--workflow")
    except MlopsError:
        return  # refused: the other half of the property (promote exits 2 before any commit)
    message = f"Subject\n\nBody.\n\nModel: m\nWorkflow: {value}\nEnv: dev\n"
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True, check=True
    ).stdout
    assert parsed.splitlines() == ["Model: m", f"Workflow: {value}", "Env: dev"]
