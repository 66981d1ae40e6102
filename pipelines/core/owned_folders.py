"""Folders a live process owns, so that a later process can remove what a killed one left.

The owner holds an exclusive lock (flock) on a file inside its folder for as long as it runs; the
kernel drops the lock when the process dies, however it dies (kill -9 included). A folder whose
lock can be taken has no live owner. A lock, not a process id: in a container a restarted server
often gets the same pid as the one that was killed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; folders are judged by the pid in their name alone
    fcntl = None

LOCK_NAME = ".owner.lock"
_held: dict[Path, int | None] = {}  # folder -> its open lock file (None: unlocked, still ours)
_lock = threading.Lock()


def owned_folder(parent, prefix: str) -> Path:
    """A new folder `parent/prefix<pid>-<random>`, readable only by this user, owned by this
    process until `release` or exit."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))  # mode 0700
    with _lock:
        _held[folder] = None  # ours before its lock exists: this process never removes it
    if fcntl is not None:
        descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        with _lock:
            _held[folder] = descriptor
    return folder


def release(folder: Path):
    """Remove an owned folder and give up its lock."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    with _lock:
        descriptor = _held.pop(folder, None)
    if descriptor is not None:
        os.close(descriptor)


def unlock(folder: Path):
    """Take the lock file out of an owned folder that is about to be renamed into place. Until
    `forget`, this process still counts it as its own, and other processes judge it by the pid
    in its name (alive: left alone)."""
    folder = Path(folder)
    with _lock:
        descriptor = _held.get(folder)
        _held[folder] = None
    (folder / LOCK_NAME).unlink(missing_ok=True)  # before the close: no one takes a lock on it after
    if descriptor is not None:
        os.close(descriptor)


def forget(folder: Path):
    """Stop counting a folder (unlocked, then renamed away) as this process's."""
    with _lock:
        _held.pop(Path(folder), None)


def remove_unowned(parent, prefix: str) -> list[Path]:
    """Remove the folders `parent/prefix*` that no live process owns; returns them."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    removed = []
    for folder in parent.iterdir():
        if folder.name.startswith(prefix) and folder.is_dir() and not folder.is_symlink() and _unowned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _unowned(folder: Path) -> bool:
    with _lock:
        if folder in _held:
            return False
    if fcntl is None:
        return _no_lock_and_dead(folder)
    try:
        descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return _no_lock_and_dead(folder)
    except OSError:
        return False  # not ours to judge (another user's, a link)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        still_there = os.fstat(descriptor).st_ino == os.stat(folder / LOCK_NAME, follow_symlinks=False).st_ino
    except BlockingIOError:
        return False  # its owner is alive
    except FileNotFoundError:
        still_there = False
    finally:
        os.close(descriptor)  # closing drops a lock just taken
    return True if still_there else _no_lock_and_dead(folder)  # unlocked by an owner finishing: its pid decides


def _no_lock_and_dead(folder: Path) -> bool:
    """A folder killed between its creation and its lock: judged by the pid in its name."""
    parts = folder.name.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False  # not named by owned_folder: left alone
    pid = int(parts[1])
    if pid == os.getpid():
        return True  # not in _held: an earlier process's that had our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False
