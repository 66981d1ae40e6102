"""Every upload gradio received, counted until a request claims it.

Gradio's upload route names a file by its content (`<sha256>/<file name>`), so two clients
sending the same bytes get one path: the ledger counts the uploads of each path, a request claims
one (opening the file before anything can remove it), and the file is removed when no upload of
it is left to claim. Removals run on the server's event loop, where gradio writes an upload and
records it in one step: a twin upload arriving while a request removes the file is either already
counted (the file stays) or written after the removal (a new file).

Uploads nobody claims are removed oldest first past `uploads_kept` files or `upload_bytes` bytes,
and after `upload_age` seconds (serving.limits); an upload that no request in gradio's queue names
after `upload_unnamed_age` seconds (60): a client sends its request as soon as its files are up,
but the browser's image editor uploads its background, layers and composite for events it then
drops (a brush stroke while the last one's event runs), and those no request ever claims. The
ledger sees each request's files as it joins the queue (it wraps the queue's `push`), before
gradio's queue holds it for however long the server is busy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from gradio.utils import get_upload_folder

from app import serving

log = logging.getLogger("mededit.app")


@dataclass
class Waiting:
    count: int  # uploads of this path not yet claimed
    size: int  # bytes on disk (one file, however many uploads)
    since: float  # time.monotonic() of the latest upload
    named: bool = False  # a request in gradio's queue names it: kept upload_age, not upload_unnamed_age


class UploadLedger(set):
    """Stands in for gradio's `Blocks.upload_file_set`, whose `update(paths)` gradio calls right
    after its upload route wrote the files. As a set it stays empty: gradio's own cache sweep
    finds nothing here to delete; the ledger removes uploads itself."""

    def __init__(self, blocks=None):
        super().__init__()
        self._blocks = blocks  # whose queue's requests name uploads (watched once it exists)
        self._lock = threading.Lock()
        self._waiting: OrderedDict[str, Waiting] = OrderedDict()  # oldest upload first
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweep_armed = False

    # --- called by gradio, on the event loop -----------------------------------------------------

    def update(self, *groups):
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        with self._lock:
            for paths in groups:
                for path in paths:
                    self._add(str(path))
            evicted = self._over_bounds()
        for path in evicted:
            remove_upload(path)
        self._watch_queue()
        self._arm_sweep()

    def _watch_queue(self):
        """From the first upload on (the server is running, its queue made): every request that
        joins the queue marks the uploads it names."""
        queue = getattr(self._blocks, "_queue", None)
        if queue is None or getattr(queue.push, "mededit_watched", False):
            return
        push = queue.push

        async def watched_push(body, *args, **kwargs):
            from app.uploads import named_files  # here: app/uploads.py imports this module
            self.named(named_files(getattr(body, "data", None)))
            return await push(body, *args, **kwargs)

        watched_push.mededit_watched = True
        queue.push = watched_push

    def named(self, paths: list[str]):
        """Requests joining the queue name `paths`: the uploads of them wait up to upload_age."""
        with self._lock:
            for path in paths:
                if path in self._waiting:
                    self._waiting[path].named = True

    def _add(self, path: str):
        try:
            size = os.stat(path).st_size
        except OSError:
            return
        previous = self._waiting.pop(path, None)
        # A twin of an upload a queued request names is itself named by no request yet.
        self._waiting[path] = Waiting((previous.count if previous else 0) + 1, size, time.monotonic())

    def _over_bounds(self) -> list[str]:
        """The oldest waiting uploads past the count and byte limits, taken off the ledger."""
        limits, evicted = serving.limits, []
        total = sum(w.size for w in self._waiting.values())
        while self._waiting and (len(self._waiting) > limits.uploads_kept or total > limits.upload_bytes):
            path, waiting = self._waiting.popitem(last=False)
            total -= waiting.size
            evicted.append(path)
        return evicted

    def _arm_sweep(self):
        if self._loop is None or self._sweep_armed:
            return
        self._sweep_armed = True
        shortest = min(serving.limits.upload_age, serving.limits.upload_unnamed_age)
        self._loop.call_later(max(1.0, min(60.0, shortest / 4)), self._sweep)

    def _sweep(self):
        """Remove uploads older than upload_age, or than upload_unnamed_age that no queued request
        names (on the event loop; re-armed while any wait)."""
        self._sweep_armed = False
        now, limits = time.monotonic(), serving.limits
        with self._lock:
            stale = [path for path, waiting in self._waiting.items()
                     if now - waiting.since > (limits.upload_age if waiting.named else
                                               min(limits.upload_age, limits.upload_unnamed_age))]
            for path in stale:
                del self._waiting[path]
            remaining = bool(self._waiting)
        for path in stale:
            remove_upload(path)
        if remaining:
            self._arm_sweep()

    # --- called by requests, in worker threads -----------------------------------------------

    def claim(self, path: str) -> int | None:
        """An open file descriptor on one waiting upload of `path` (the caller closes it), or None
        when none waits (never uploaded, already claimed, or removed past the limits)."""
        with self._lock:
            waiting = self._waiting.get(path)
            if waiting is None:
                return None
            try:
                descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # never a link
            except OSError:
                del self._waiting[path]
                return None
            waiting.count -= 1
            if waiting.count == 0:
                del self._waiting[path]
        self._on_loop(self._remove_if_unclaimed, path)
        return descriptor

    def _remove_if_unclaimed(self, path: str):
        with self._lock:
            if path in self._waiting:
                return  # a twin upload of the same bytes waits for its own request
        remove_upload(path)

    def _on_loop(self, fn, *args):
        """Run `fn(*args)` on the event loop and wait for it (directly when there is no loop)."""
        loop, done = self._loop, threading.Event()

        def run():
            try:
                fn(*args)
            finally:
                done.set()

        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if loop is None or on_loop:
            return fn(*args)
        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop has closed: the server is stopping
            return fn(*args)
        if not done.wait(10):
            log.warning("an upload's removal waited 10 s for the event loop")


def remove_upload(path: str):
    """Remove an upload and the folder gradio made for it."""
    try:
        Path(path).unlink(missing_ok=True)
        if Path(path).parent != Path(get_upload_folder()):
            Path(path).parent.rmdir()
    except OSError as error:
        log.debug("upload %s: %s", path, error)


def ledger_of(blocks) -> UploadLedger:
    """The ledger of `blocks`, put in place of gradio's upload set the first time."""
    current = blocks.upload_file_set
    if isinstance(current, UploadLedger):
        return current
    ledger = UploadLedger(blocks)
    blocks.temp_file_sets = [ledger if s is current else s for s in blocks.temp_file_sets]
    blocks.upload_file_set = ledger
    return ledger
