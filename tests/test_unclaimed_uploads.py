"""Uploads no request will claim (the browser's editor uploads its layers for events it then drops)
are removed after upload_unnamed_age, not upload_age; an upload that a request waiting in gradio's
queue names is kept until that request claims it (app/upload_ledger.py)."""

import asyncio
from types import SimpleNamespace

import pytest

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


@pytest.mark.parametrize("value", ["0", "-5"])
def test_the_short_age_is_a_server_setting(value):
    from app import serving
    from pipelines.core.errors import MedEditError

    assert serving.ServerLimits.from_env({}).upload_unnamed_age == 60
    assert serving.ServerLimits.from_env({"MEDEDIT_UPLOAD_UNNAMED_AGE": "20"}).upload_unnamed_age == 20
    with pytest.raises(MedEditError, match="MEDEDIT_UPLOAD_UNNAMED_AGE must be above 0"):
        serving.ServerLimits.from_env({"MEDEDIT_UPLOAD_UNNAMED_AGE": value})
