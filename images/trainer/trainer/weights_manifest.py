"""The weights manifest: what the model server's fetch checks the downloaded weights against.

The trainer computes it while it still holds the files it trained, so nobody has to download
multi-GB weights again to learn their digest. The manifest is one line per regular file of the
model folder, `<sha256 hex>  <relative path>` and a line feed (GNU `sha256sum`'s own output format), in byte
order of the path; the weights digest is `sha256:` + the SHA-256 of the manifest's bytes. The
vLLM pod's init container (base/models/vllm/deployment.yaml, fetch-weights) recomputes the same
manifest from what it downloaded with `sha256sum` and `sort`, so a file that changed, went
missing or was added changes the digest. The digest is recorded on the registered model version
(tag `weights_digest`) under the trainer's MLflow identity, the only one allowed to write
version tags (images/mlflow/registry_access); `mlops promote` copies it into git.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from trainer.errors import TrainerError

DIGEST_TAG = "weights_digest"
"""The model-version tag that carries the digest (mlops.conventions.registry_names spells it too)."""
MANIFEST_SUFFIX = ".sha256sums"
"""The manifest is stored beside the attempt's weights folder (trainer.tracking.new_attempt_path):
`<artifacts>/model/attempt-<id>` -> `<artifacts>/model/attempt-<id>.sha256sums`."""
_CHUNK = 1 << 20
# sha256sum escapes a name holding a backslash or a line break, which the shell side could not
# reproduce byte for byte; Hugging Face file names never hold them.
_UNSAFE_NAME = re.compile(r"[\\\n\r]")


def _file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def manifest(folder: Path) -> str:
    """Return the manifest of every regular file under `folder` (the format is the module docstring's).

    Raises:
        TrainerError: the folder holds no file, a symbolic link, or a name `sha256sum` would escape.
    """
    lines: list[tuple[bytes, str]] = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            raise TrainerError(f"{path}: a symbolic link in the model folder; save the weights as files")
        if not path.is_file():
            continue
        if _UNSAFE_NAME.search(relative):
            raise TrainerError(f"{path}: a name with a backslash or line break cannot go in the manifest")
        lines.append((relative.encode(), f"{_file_sha256(path)}  {relative}\n"))
    if not lines:
        raise TrainerError(f"{folder}: no file to register: the model was not saved")
    return "".join(line for _key, line in sorted(lines))


def digest(manifest_text: str) -> str:
    """Return the weights digest of a manifest: `sha256:<hex>`."""
    return "sha256:" + hashlib.sha256(manifest_text.encode()).hexdigest()
