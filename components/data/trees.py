"""Read-only file trees a data path can point to: the workspace, or git+DVC at a revision."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Protocol

from components.errors import DataLoadError


class Tree(Protocol):
    """Read-only view of the files a path can point to (the workspace, or git+DVC at a rev)."""

    def describe(self, path: str) -> str: ...
    def exists(self, path: str) -> bool: ...
    def isdir(self, path: str) -> bool: ...
    def listdir(self, path: str) -> list[str]: ...
    def read_bytes(self, path: str) -> bytes: ...
    def close(self) -> None: ...


class LocalTree:
    """The working tree; paths are absolute."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir

    def describe(self, path: str) -> str:
        p = Path(path)
        return str(p.relative_to(self.project_dir)) if p.is_relative_to(self.project_dir) else path

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def isdir(self, path: str) -> bool:
        return Path(path).is_dir()

    def listdir(self, path: str) -> list[str]:
        return sorted(p.name for p in Path(path).iterdir())

    def read_bytes(self, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as err:
            raise DataLoadError(f"cannot read {self.describe(path)}: {err.strerror}") from err

    def close(self) -> None:
        pass


class DvcTree:
    """The project at a git commit through `dvc.api.DVCFileSystem`; paths are relative POSIX."""

    def __init__(self, project_dir: Path, rev: str, commit: str) -> None:
        from dvc.api import DVCFileSystem

        self.rev = rev
        self.label = rev if commit.startswith(rev) else f"{rev} ({commit[:12]})"
        self.fs = DVCFileSystem(str(project_dir), rev=commit)

    def describe(self, path: str) -> str:
        return f"{path} at git revision {self.label}"

    def _call(self, what: str, path: str, fn, *args):
        try:
            return fn(path, *args)
        except FileNotFoundError as err:
            raise DataLoadError(f"{self.describe(path)} does not exist") from err
        except DataLoadError:
            raise
        except Exception as err:  # DVC raises many kinds (missing cache/remote, bad config)
            cause = f" (cause: {err.__cause__})" if err.__cause__ else ""
            raise DataLoadError(
                f"DVC could not {what} {self.describe(path)}: {type(err).__name__}: {err}{cause}. "
                "Its DVC-tracked data is neither in the local cache nor on the DVC remote: push "
                "it (`dvc push --all-commits`) where it was added, or check the remote config"
            ) from err

    def exists(self, path: str) -> bool:
        # not fs.exists: that answers False when DVC cannot fetch a tracked folder's listing
        def info(p: str) -> bool:
            try:
                self.fs.info(p)
            except FileNotFoundError:
                return False
            return True

        return bool(self._call("look up", path, info))

    def isdir(self, path: str) -> bool:
        return bool(self._call("look up", path, self.fs.isdir))

    def listdir(self, path: str) -> list[str]:
        entries = self._call("list", path, self.fs.ls, False)
        return sorted(PurePosixPath(str(e)).name for e in entries)

    def read_bytes(self, path: str) -> bytes:
        def read(p: str) -> bytes:
            with self.fs.open(p, "rb") as handle:
                return handle.read()

        return self._call("read", path, read)

    def close(self) -> None:
        self.fs.close()
