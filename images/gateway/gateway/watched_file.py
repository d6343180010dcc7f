"""A mounted file the gateway re-reads when it changes (routes, API keys)."""

from __future__ import annotations

from pathlib import Path


class WatchedFile:
    """Tells whether a file changed since last asked (Kubernetes swaps mounted files by symlink)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None

    def changed(self) -> bool:
        """Tell whether the file changed (or appeared, or went) since the last call."""
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (0, 0, 0)
        if stamp == self._seen:
            return False
        self._seen = stamp
        return True
