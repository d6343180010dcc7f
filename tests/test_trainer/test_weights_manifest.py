"""The weights manifest the trainer records and the vLLM fetch recomputes with sha256sum."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from trainer import weights_manifest
from trainer.errors import TrainerError


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}\n")
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"\x00" * 1000)
    (folder / "sub" / "a b.txt").write_text("spaces are fine\n")
    (folder / "Zed.bin").write_bytes(b"z")
    return folder


def test_the_manifest_is_what_sha256sum_prints_in_byte_order(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    text = weights_manifest.manifest(folder)
    names = [line.split("  ", 1)[1] for line in text.splitlines()]
    # Byte order, as `LC_ALL=C sort` gives it: capitals before lower case.
    assert names == ["Zed.bin", "config.json", "model-00001-of-00002.safetensors", "sub/a b.txt"]
    if shutil.which("sha256sum"):
        shell = subprocess.run(
            ["sha256sum", "--", *names], cwd=folder, capture_output=True, text=True, check=True
        ).stdout
        assert shell == text
    assert weights_manifest.digest(text) == "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_any_change_changes_the_digest(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    before = weights_manifest.digest(weights_manifest.manifest(folder))
    (folder / "extra.py").write_text("import os\n")
    added = weights_manifest.digest(weights_manifest.manifest(folder))
    (folder / "extra.py").unlink()
    (folder / "config.json").write_text("{ }\n")
    changed = weights_manifest.digest(weights_manifest.manifest(folder))
    assert len({before, added, changed}) == 3


@pytest.mark.parametrize("name", ["back\\slash.json", "line\nbreak.json"])
def test_a_name_sha256sum_would_escape_is_refused(tmp_path: Path, name: str) -> None:
    folder = _folder(tmp_path)
    (folder / name).write_text("x")
    with pytest.raises(TrainerError, match="cannot go in the manifest"):
        weights_manifest.manifest(folder)


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(TrainerError, match="no file to register"):
        weights_manifest.manifest(tmp_path / "model")
