"""Build one kustomization directory with the `kustomize` binary, or `kubectl kustomize`."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
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


ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
"""Where kustomize says an object came from (`buildMetadata: [originAnnotations]`)."""


def build_with_origins(path: Path, *, cwd: Path | None = None) -> tuple[str, str]:
    """Build `path` with every object annotated with the file it came from.

    The user's kustomization is not edited: a throw-away kustomization in a temporary folder
    lists `path` as its only resource and asks for origin annotations, which kustomize (v5)
    then writes on every object, those of bases and components included. The paths in them
    are relative to the temporary folder, so it is returned with the output.

    Returns:
        kustomize's output and the temporary folder the origins are relative to (gone by now).

    Raises:
        KustomizeError: the build failed; the message is the one a plain build of `path` gives
            (kustomize's message about the wrapper would name the temporary folder).
    """
    shown = _shown(path, cwd)
    if not (path / "kustomization.yaml").is_file() and not (path / "kustomization.yml").is_file():
        raise KustomizeError(f"{shown}: no kustomization.yaml: point at a folder that has one")
    with tempfile.TemporaryDirectory(prefix="mlops-origins-") as tmp:
        root = os.path.realpath(tmp)
        # kustomize refuses an absolute resource path: name the folder relative to the wrapper.
        relative = os.path.relpath(os.path.realpath(path), root)
        Path(root, "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n- {_quoted(relative)}\nbuildMetadata: [originAnnotations]\n"
        )
        proc = subprocess.run([*kustomize_command(), root], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return build(path, cwd=cwd), root  # raises with the plain build's own message
    return proc.stdout, root


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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


_QUOTED_PATHS = re.compile(r"path\((?P<a>[^)]+)\)|`path: (?P<b>[^`]+)`|resources from '(?P<c>[^']+)'")


def failed_file(folder: str, message: str, repo: Path) -> str:
    """The kustomization file of `folder` a build failure is about, and its line where that helps.

    The line is the one naming the path kustomize could not read (`kustomization.yaml:12`),
    where its message quotes one.
    """
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        file = repo / folder / name
        if file.is_file():
            break
    else:
        return folder
    shown = f"{folder}/{file.name}"
    quoted = [m.group("a") or m.group("b") or m.group("c") for m in _QUOTED_PATHS.finditer(message)]
    try:
        lines = file.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return shown
    for path in quoted:
        for number, line in enumerate(lines, 1):
            if re.search(rf"(^|[\s\-:\[,'\"]){re.escape(path.strip())}($|[\s\],'\"])", line):
                return f"{shown}:{number}"
    return shown


def _shown(path: Path, cwd: Path | None) -> str:
    """Return `path` relative to `cwd` when it lies inside, else as given."""
    if cwd is not None:
        try:
            return str(path.resolve().relative_to(cwd.resolve()))
        except ValueError:
            pass
    return str(path)
