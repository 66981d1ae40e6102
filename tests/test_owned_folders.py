"""Folders owned by a live process (pipelines/core/owned_folders.py): a lock the kernel drops when
the owner dies, however it dies, so a later process removes exactly what dead ones left, even one
that had its pid (as runs in a container do). Real processes, real kill -9."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from pipelines.core.owned_folders import LOCK_NAME, owned_folder, release, remove_unowned

ROOT = Path(__file__).resolve().parent.parent
HOLD = ("import sys, time; from pipelines.core.owned_folders import owned_folder; "
        "print(owned_folder(sys.argv[1], 'served-'), flush=True); time.sleep(600)")


def holder(parent: Path) -> tuple[subprocess.Popen, Path]:
    """Another process that makes an owned folder in `parent` and keeps running."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(parent)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return process, Path(process.stdout.readline().strip())


def test_a_live_owners_folder_stays_and_a_killed_ones_goes(tmp_path):
    live, live_folder = holder(tmp_path)
    killed, killed_folder = holder(tmp_path)
    try:
        (killed_folder / "upload-0").write_bytes(b"DOE^JANE")
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert remove_unowned(tmp_path, "served-") == [killed_folder]
        assert live_folder.is_dir() and not killed_folder.exists()
    finally:
        live.kill()
        live.wait(timeout=30)
    assert remove_unowned(tmp_path, "served-") == [live_folder]


def test_a_dead_runs_folder_with_this_processes_pid_is_removed(tmp_path):
    stale = tmp_path / f"served-{os.getpid()}-abcd1234"  # a killed run that had our pid
    stale.mkdir()
    (stale / LOCK_NAME).touch()
    ours = owned_folder(tmp_path, "served-")
    assert ours.name.startswith(f"served-{os.getpid()}-")
    assert oct(ours.stat().st_mode & 0o777) == "0o700"
    assert remove_unowned(tmp_path, "served-") == [stale]
    release(ours)
    assert list(tmp_path.iterdir()) == []


def test_folders_of_other_names_are_left_alone(tmp_path):
    for name in ("served", "served-notapid-x", "other-1-abc"):
        (tmp_path / name).mkdir()
    (tmp_path / "served-1-file").write_bytes(b"")  # a file, not a folder
    assert remove_unowned(tmp_path, "served-") == []
    assert remove_unowned(tmp_path / "missing", "served-") == []
