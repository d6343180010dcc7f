"""Build one kustomization directory with the `kustomize` binary, or `kubectl kustomize`."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

from mlops.conventions.errors import MlopsError


class KustomizeError(MlopsError):
    """A kustomization failed to build; the message names the folder and kustomize's error."""


@functools.cache
def kustomize_command() -> tuple[str, ...]:
    """Return the command that builds a kustomization: `kustomize build` or `kubectl kustomize`."""
    if exe := shutil.which("kustomize"):
        return (exe, "build")
    if exe := shutil.which("kubectl"):
        return (exe, "kustomize")
    raise MlopsError("neither `kustomize` nor `kubectl` is on PATH: install one (kubectl embeds kustomize)")


def build(path: Path, *, cwd: Path | None = None) -> str:
    """Build the kustomization in `path` and return the rendered multi-document YAML.

    Raises:
        KustomizeError: the build failed; the message names the folder and repeats kustomize's
            own error so that the broken file is visible.
    """
    shown = _shown(path, cwd)
    if not (path / "kustomization.yaml").is_file() and not (path / "kustomization.yml").is_file():
        raise KustomizeError(f"{shown}: no kustomization.yaml: point at a folder that has one")
    proc = subprocess.run([*kustomize_command(), str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise KustomizeError(f"{shown}: kustomize build failed: {_reason(proc.stderr, proc.returncode, cwd)}")
    return proc.stdout


def _reason(stderr: str, returncode: int, cwd: Path | None) -> str:
    """Return kustomize's whole error, without kubectl's log prefix, on one line.

    `kustomize build` prints `Error: <message>`; `kubectl kustomize` logs
    `E1123 ... "command failed" err="<message>"`, or, when the message spans lines,
    `err=<` then the message's lines, each indented by a tab, then ` >`.
    """
    text = stderr.strip()
    if not text:
        return f"exit code {returncode}"
    if match := re.search(r"err=<\n(.*?)\n\s*>\s*$", text, re.S):
        message = " ".join(part.strip() for part in match.group(1).splitlines() if part.strip())
    elif match := re.search(r'err="(.*)"\s*$', text.splitlines()[-1]):
        message = match.group(1).replace('\\"', '"')
    else:
        message = " ".join(line.strip() for line in text.splitlines() if line.strip())
    # The YAML string kustomize quotes a patch's config in (`config: `\npath: x\n``) reads as one line.
    message = re.sub(r"`\s*(.*?)\s*`", lambda m: f"`{m.group(1)}`", message)
    if cwd is not None:  # paths relative to the repository read the same on every machine
        message = message.replace(f"{cwd.resolve()}/", "")
    return message.removeprefix("Error: ")


def _shown(path: Path, cwd: Path | None) -> str:
    """Return `path` relative to `cwd` when it lies inside, else as given."""
    if cwd is not None:
        try:
            return str(path.resolve().relative_to(cwd.resolve()))
        except ValueError:
            pass
    return str(path)
