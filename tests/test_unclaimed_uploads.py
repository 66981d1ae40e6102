"""Uploads no request will claim (the browser's editor uploads its layers for events it then drops)
are removed after upload_unnamed_age, not upload_age; an upload that a request waiting in gradio's
queue names is kept until that request claims it (app/upload_ledger.py)."""

import asyncio
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.held_device import HeldDevice
from tests.test_app_api import raw_call, strict_app
from tests.test_storage_bounds import describe, distinct_pngs, upload

FILE_META = {"_type": "gradio.FileData"}


class FakeQueue:
    """Gradio's queue as the ledger sees it: requests join through push."""

    def __init__(self):
        self.pushed = []

    async def push(self, body, request=None, username=None):
        self.pushed.append(body)
        return True, "event", "success"


def older(ledger, seconds: float):
    """Every waiting upload arrived `seconds` earlier than it did."""
    for waiting in ledger._waiting.values():
        waiting.since -= seconds


def test_an_upload_no_queued_request_names_goes_after_the_short_age(tmp_path):
    from app import serving
    from app.upload_ledger import UploadLedger

    previous = serving.configure(serving.ServerLimits(upload_age=600, upload_unnamed_age=60))
    try:
        queue = FakeQueue()
        ledger = UploadLedger(SimpleNamespace(_queue=queue))
        named, dropped = tmp_path / "a" / "image.png", tmp_path / "b" / "layer.png"
        for path in (named, dropped):
            path.parent.mkdir()
            path.write_bytes(b"png")
        ledger.update([str(named), str(dropped)])  # as gradio's upload route records them
        body = SimpleNamespace(data=[{"path": str(named), "meta": FILE_META}, "prompt", 3])
        assert asyncio.run(queue.push(body)) == (True, "event", "success")  # the request joins the queue
        assert queue.pushed == [body]  # gradio's own push still takes it
        older(ledger, 59)
        ledger._sweep()
        assert named.exists() and dropped.exists()  # both younger than the short age
        older(ledger, 2)
        ledger._sweep()
        assert named.exists() and not dropped.exists() and not dropped.parent.exists()
        older(ledger, 540)  # 601 s: past upload_age, a queued request's upload goes too
        ledger._sweep()
        assert not named.exists()
        assert ledger.claim(str(named)) is None  # and no request can claim it any more
    finally:
        serving.configure(previous)


def test_a_twin_upload_is_named_by_its_own_request_only_once_it_joins(tmp_path):
    """The same bytes uploaded again after a request named the first: the path waits as unnamed
    again, so a twin no request names does not keep it for upload_age."""
    from app import serving
    from app.upload_ledger import UploadLedger

    previous = serving.configure(serving.ServerLimits(upload_age=600, upload_unnamed_age=60))
    try:
        queue = FakeQueue()
        ledger = UploadLedger(SimpleNamespace(_queue=queue))
        path = tmp_path / "c" / "same.png"
        path.parent.mkdir()
        path.write_bytes(b"png")
        ledger.update([str(path)])
        asyncio.run(queue.push(SimpleNamespace(data=[{"path": str(path), "meta": FILE_META}])))
        descriptor = ledger.claim(str(path))  # the first request claims its upload
        assert descriptor is not None
        import os
        os.close(descriptor)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"png")
        ledger.update([str(path)])  # a twin nobody sends a request for
        older(ledger, 61)
        ledger._sweep()
        assert not path.exists()
    finally:
        serving.configure(previous)


def test_in_a_running_app_a_dropped_upload_goes_and_a_queued_requests_upload_stays(app_url):
    """One light slot, taken by a request that waits for the device (held here): a second request
    waits in gradio's queue past the short age, its upload kept; an upload no request names goes."""
    first_png, queued_png, dropped_png = distinct_pngs(3)
    with strict_app(light_slots=1, upload_unnamed_age=1) as url:
        answers, calls = {}, []

        def ask(name, path):
            answers[name] = describe(url, path)

        try:
            with HeldDevice(seconds=120):
                first, queued = upload(url, first_png, "first.png"), upload(url, queued_png, "queued.png")
                calls = [threading.Thread(target=ask, args=(name, path))
                         for name, path in (("first", first), ("queued", queued))]
                calls[0].start()
                time.sleep(0.5)  # the first takes the one light slot (and waits for the device)
                calls[1].start()  # the second waits in gradio's queue, naming its upload
                dropped = upload(url, dropped_png, "dropped-layer.png")
                end = time.monotonic() + 15
                while Path(dropped).exists():
                    assert time.monotonic() < end, "an upload no request names outlived upload_unnamed_age"
                    time.sleep(0.1)
                assert Path(queued).exists()  # older than the short age, kept for its queued request
        finally:
            for call in calls:
                call.join(120)
        assert "event: complete" in answers["first"] and "event: complete" in answers["queued"], answers
        assert not Path(queued).exists() and not Path(first).exists()  # claimed, copied, removed
        assert "not uploaded to this server" in raw_call(url, "describe_image",
                                                         [{"path": dropped, "meta": FILE_META}])


@pytest.mark.parametrize("value", ["0", "-5"])
def test_the_short_age_is_a_server_setting(value):
    from app import serving
    from pipelines.core.errors import MedEditError

    assert serving.ServerLimits.from_env({}).upload_unnamed_age == 60
    assert serving.ServerLimits.from_env({"MEDEDIT_UPLOAD_UNNAMED_AGE": "20"}).upload_unnamed_age == 20
    with pytest.raises(MedEditError, match="MEDEDIT_UPLOAD_UNNAMED_AGE must be above 0"):
        serving.ServerLimits.from_env({"MEDEDIT_UPLOAD_UNNAMED_AGE": value})
