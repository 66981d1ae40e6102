"""Writing files so that no reader ever sees half of one, and naming content by its hash."""

import hashlib
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

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

    The folder is named for this process, so a later run can tell a killed run's leftovers (its
    process gone: removed here first) from a live run's folder (left alone)."""
    target = Path(target)
    remove_stale_siblings(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes it private; the result is an ordinary folder
        yield tmp
        if target.exists():
            for item in tmp.iterdir():
                os.replace(item, target / item.name)
            tmp.rmdir()
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_siblings(target: Path) -> list[Path]:
    """Remove the temporary folders of `target` left by runs whose process no longer exists."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.tmp-(\d+)-")
    removed = []
    if not target.parent.is_dir():
        return removed
    for item in target.parent.iterdir():
        match = pattern.match(item.name)
        if match and item.is_dir() and not _process_alive(int(match.group(1))):
            shutil.rmtree(item, ignore_errors=True)
            removed.append(item)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or a pid we cannot ask about): leave its folder
    return True


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is not safe while other
# threads create files.
UMASK = _read_umask()
