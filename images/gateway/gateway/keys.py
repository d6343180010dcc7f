"""API keys from the mounted Secret file: one key per line, or a YAML list / mapping of keys."""

from __future__ import annotations

from pathlib import Path

import yaml


class KeysError(ValueError):
    """The keys file is unusable; the message names the file."""


def parse_keys(text: str, source: str) -> frozenset[str]:
    """Keys from the file's text.

    Accepted shapes: plain lines (``#`` comments and blank lines ignored); a YAML list of
    keys; a YAML mapping of client name -> key (so the Secret can say whose key is whose).

    Raises:
        KeysError: the file holds no key or an entry that is not a string.
    """
    stripped = text.strip()
    keys: list[object]
    if stripped.startswith(("-", "{", "[")) or (":" in stripped.splitlines()[0] if stripped else False):
        try:
            data = yaml.safe_load(stripped)
        except yaml.YAMLError as exc:
            raise KeysError(f"{source}: looks like YAML but does not parse: {exc}") from exc
        keys = list(data.values()) if isinstance(data, dict) else list(data or [])
    else:
        keys = [line.strip() for line in stripped.splitlines() if line.strip() and not line.startswith("#")]
    if not all(isinstance(k, str) and k and " " not in k for k in keys):
        raise KeysError(f"{source}: every API key must be a non-empty string without spaces")
    if not keys:
        raise KeysError(f"{source}: no API key in the file; add one key per line")
    return frozenset(keys)  # type: ignore[arg-type]


def load_keys(path: Path) -> frozenset[str]:
    """Read the keys file.

    Raises:
        KeysError: missing, unreadable or empty.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeysError(f"{path}: cannot read the API keys file: {exc.strerror}") from exc
    return parse_keys(text, str(path))
