"""Bounded storage: uploads that wait for a request, and the responses' files, are removed oldest
first past their count and byte limits (and uploads past their age), filled here by real uploads
and real requests to a second app with small limits (app/serving.py)."""

import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_app_api import SOURCE, FAST, raw_call, strict_app
from tests.upload_files import png_bytes

httpx = pytest.importorskip("httpx")
gradio_client = pytest.importorskip("gradio_client")


def upload(url: str, data: bytes, name: str) -> str:
    with httpx.Client(base_url=url, timeout=60) as http:
        response = http.post("gradio_api/upload", files={"files": (name, data)})
    assert response.status_code == 200, response.text
    return response.json()[0]


def distinct_pngs(n: int) -> list[bytes]:
    """PNGs of the same size in bytes (raw, incompressible pixels of one shape)."""
    rng = np.random.default_rng(7)
    return [png_bytes(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(n)]


def describe(url: str, path: str) -> str:
    return raw_call(url, "describe_image", [{"path": path, "meta": {"_type": "gradio.FileData"}}])


def test_waiting_uploads_past_the_count_are_removed_oldest_first(app_url):
    with strict_app(uploads_kept=3) as url:
        paths = [upload(url, data, f"u{i}.png") for i, data in enumerate(distinct_pngs(5))]
        assert [Path(p).exists() for p in paths] == [False, False, True, True, True]
        assert "not uploaded to this server" in describe(url, paths[0])
        assert "event: complete" in describe(url, paths[-1])


def test_waiting_uploads_past_the_bytes_are_removed_oldest_first(app_url):
    pngs = distinct_pngs(5)
    size = len(pngs[0])
    with strict_app(uploads_kept=100, upload_bytes=2 * size + size // 2) as url:
        paths = [upload(url, data, f"b{i}.png") for i, data in enumerate(pngs)]
        assert [Path(p).exists() for p in paths] == [False, False, False, True, True]


def test_waiting_uploads_past_their_age_are_removed(app_url):
    with strict_app(upload_age=1) as url:
        path = upload(url, distinct_pngs(1)[0], "old.png")
        end = time.monotonic() + 10
        while Path(path).exists():
            assert time.monotonic() < end, "an upload outlived upload_age"
            time.sleep(0.1)


def test_responses_past_the_bytes_are_removed_oldest_first(app_url):
    from app.outputs import folder_bytes, folders
    with strict_app(results_kept=100, results_bytes=1) as url:  # every response is over: only the newest stays
        client = gradio_client.Client(url, verbose=False)
        paths = [client.predict(**SOURCE, seed=seed, **FAST, api_name="/generate")[0] for seed in range(60, 64)]
        kept = list(folders.root.iterdir())
        assert len(kept) == 1 and folder_bytes(kept[0]) > 1
        assert paths  # the client's own downloads are the client's
    with strict_app(results_kept=100, results_bytes=10**9) as url:
        client = gradio_client.Client(url, verbose=False)
        before = len(list(folders.root.iterdir()))
        for seed in range(64, 67):
            client.predict(**SOURCE, seed=seed, **FAST, api_name="/generate")
        assert len(list(folders.root.iterdir())) == before + 3
