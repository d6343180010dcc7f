"""The CI entry points (README, .ci/run, GitHub workflows, pre-commit) call only what exists."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import yaml
from mlops.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md must open with a bash block holding the two set-up commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.M))


def _mlops_commands() -> dict[str, set[str]]:
    """Map each `mlops` sub-command to the names of its own sub-commands (if any)."""
    parser = build_parser()
    found: dict[str, set[str]] = {}
    for action in parser._subparsers._group_actions:  # noqa: SLF001 - argparse has no public walk
        for name, sub in action.choices.items():
            nested: set[str] = set()
            if sub._subparsers is not None:  # noqa: SLF001
                for nested_action in sub._subparsers._group_actions:  # noqa: SLF001
                    nested |= set(getattr(nested_action, "choices", None) or {})
            found[name] = nested
    return found


def _shell_lines(run: str) -> list[list[str]]:
    """Split a workflow `run:` script into commands (joined continuations, split on && || ;)."""
    joined = run.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            part = part.strip()
            if part and not part.startswith("#"):
                commands.append(shlex.split(part, comments=True))
    return [c for c in commands if c]


def _check_command(argv: list[str], targets: set[str], mlops: dict[str, set[str]]) -> None:
    program = Path(argv[0]).name
    if program == "make":
        for target in (a for a in argv[1:] if not a.startswith("-") and "=" not in a):
            assert target in targets, f"make {target}: no such target in the Makefile"
    elif program == "mlops":
        args = [a for a in argv[1:] if not a.startswith("-")]
        assert args and args[0] in mlops, f"mlops {args[:1]}: no such sub-command"
        if mlops[args[0]] and len(args) > 1:
            assert args[1] in mlops[args[0]], f"mlops {args[0]} {args[1]}: no such sub-command"
    elif argv[0].startswith(("scripts/", ".ci/", "./")) or (program == "bash" and len(argv) > 1):
        path = argv[1] if program == "bash" else argv[0]
        assert (REPO / path).is_file(), f"{path}: no such script in the repository"


def test_readme_opens_with_the_demo_and_the_test_command() -> None:
    assert _readme_commands() == ["make demo", "make test"]


def test_ci_run_calls_the_readme_test_command() -> None:
    script = (REPO / ".ci/run").read_text()
    test_command = _readme_commands()[1]
    assert re.search(rf"^{re.escape(test_command)}$", script, re.M), ".ci/run must call `make test`"


def test_makefile_targets_have_help_and_the_readme_ones_exist() -> None:
    targets = _make_targets()
    for command in _readme_commands():
        assert command.split()[1] in targets
    out = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True)
    documented = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    assert targets - {"help"} <= documented | {".venv/.installed"}


def test_github_workflows_parse_and_call_existing_commands() -> None:
    targets, mlops = _make_targets(), _mlops_commands()
    files = sorted((REPO / ".github/workflows").glob("*.yaml"))
    assert files
    for path in files:
        workflow = yaml.safe_load(path.read_text())
        # PyYAML reads the bare key `on` as True.
        assert workflow.get("on", workflow.get(True)), f"{path.name}: no trigger"
        for job_name, job in workflow["jobs"].items():
            assert job.get("runs-on"), f"{path.name}: job {job_name} has no runs-on"
            for step in job["steps"]:
                assert "uses" in step or "run" in step, f"{path.name}: {job_name}: empty step"
                for argv in _shell_lines(step.get("run", "")):
                    _check_command(argv, targets, mlops)


def test_pre_commit_local_hooks_call_existing_commands() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    targets, mlops = _make_targets(), _mlops_commands()
    local = [hook for repo in config["repos"] if repo["repo"] == "local" for hook in repo["hooks"]]
    assert local
    for hook in local:
        _check_command(shlex.split(hook["entry"]), targets, mlops)


def test_image_build_matrix_points_at_real_dockerfiles() -> None:
    workflow = yaml.safe_load((REPO / ".github/workflows/images.yaml").read_text())
    matrix = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
    built = set()
    for entry in matrix:
        dockerfile = entry.get("dockerfile", f"{entry['context']}/Dockerfile")
        assert (REPO / dockerfile).is_file(), f"{dockerfile}: missing"
        built.add(entry["image"])
    on_disk = {p.parent.name for p in (REPO / "images").glob("*/Dockerfile")}
    assert on_disk <= built, f"images never built on main: {sorted(on_disk - built)}"
