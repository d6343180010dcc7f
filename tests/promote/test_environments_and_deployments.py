"""One environment check for every command, and the names a deployment of a model derives."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlops.cli import main
from mlops.conventions.deployment import Deployment

COMMANDS = {
    "render": ["render", "qa"],
    "validate": ["validate", "dev", "qa"],
    "diff": ["diff", "--env", "qa"],
    "status": ["status", "--env", "qa"],
    "registry": ["registry", "sync-alias", "--env", "qa", "--model", "support-chat", "--version", "1"],
    "canary": ["canary", "analyze", "--env", "qa", "--model", "support-chat"],
    "promote": ["promote", "--env", "qa", "--model", "support-chat", "--version", "1"],
    "rollback": ["rollback", "--env", "qa", "--model", "support-chat"],
}


@pytest.mark.parametrize("argv", COMMANDS.values(), ids=COMMANDS.keys())
def test_every_command_refuses_an_unknown_environment_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: unknown environment 'qa': use one of dev, prod\n"
    assert captured.out == ""


def test_read_only_commands_do_not_load_the_write_path() -> None:
    program = (
        "import sys; from mlops.cli import main; rc = main(['status', '--env', 'qa']); "
        "write = ('mlops.release.promotion', 'mlops.release.rollback', 'mlops.release.write_path'); "
        "print(rc, sorted(m for m in write if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert done.stdout == "2 []\n"


@pytest.mark.parametrize(
    ("deployment", "folder", "version_file", "alias", "label"),
    [
        (Deployment("dev", "support-chat"), "support-chat",
         "overlays/dev/models/support-chat/model-version.yaml", "dev", "dev"),
        (Deployment("prod", "support-chat", canary=True), "support-chat-canary",
         "overlays/prod/models/support-chat-canary/model-version.yaml", "prod-canary", "prod canary"),
    ],
)  # fmt: skip
def test_a_deployment_knows_its_folder_version_file_alias_and_label(
    deployment: Deployment, folder: str, version_file: str, alias: str, label: str
) -> None:
    assert (deployment.name, deployment.version_file, deployment.alias, deployment.label) == (
        folder, version_file, alias, label,
    )  # fmt: skip
    assert Deployment.from_folder(deployment.env, folder) == deployment
    assert deployment.through_pull_request == (deployment.env == "prod")
