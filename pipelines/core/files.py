"""Writing files so that no reader ever sees half of one, and naming content by its hash."""

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from pipelines.core.owned_folders import forget, owned_folder, release, remove_unowned, unlock

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")  # refused: loading them runs code
CHUNK = 1 << 20


def find_assets() -> Path:
    """The shipped weights: the copy `pip install .` puts in the package (pyproject.toml), else the
    checkout's assets/ (a clone, or `pip install -e .`). The package's copy is tried first: an
    unrelated `assets` folder may sit beside an installed package in site-packages."""
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "assets", package.parent / "assets"):
        if (folder / "mededit-default").is_dir():
            return folder
    return package.parent / "assets"  # neither: the loaders then name the missing folder


ASSETS = find_assets()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(paths, length: int = 12) -> str:
    """One sha256 over the files' bytes, in the order given (callers sort)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                digest.update(block)
    return digest.hexdigest()[:length]


def write_atomic(path, data: bytes) -> Path:
    """Write `data` to a temporary sibling, then rename it into place: readers see the old file or
    the whole new one, and a kill leaves no partial file under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def atomic_folder(target):
    """Yield a temporary sibling folder to fill; on success its files replace `target`'s (made if
    missing), on failure it is removed and `target` is untouched.

    The folder is owned by this process (pipelines/core/owned_folders.py: a lock held on a file in
    it, and the pid in its name), so a later run tells a killed run's leftovers (removed here
    first) from a live run's folder (left alone), even when the killed run had the same pid, as
    runs in a container often do."""
    target = Path(target)
    remove_stale_siblings(target)
    tmp = owned_folder(target.parent, _temporary_prefix(target))
    try:
        os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes it private; the result is an ordinary folder
        yield tmp
        unlock(tmp)  # the lock file is not part of the result
        if target.exists():
            for item in tmp.iterdir():
                os.replace(item, target / item.name)
            tmp.rmdir()
        else:
            os.replace(tmp, target)
        forget(tmp)
    except BaseException:
        release(tmp)
        raise


def remove_stale_siblings(target: Path) -> list[Path]:
    """Remove the temporary folders of `target` left by runs that no longer live."""
    return remove_unowned(target.parent, _temporary_prefix(target))


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is not safe while other
# threads create files.
UMASK = _read_umask()
