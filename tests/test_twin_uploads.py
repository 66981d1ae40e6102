"""Twin uploads: gradio names an upload by its content, so clients sending the same bytes share one
path. Each request still gets its own answer, at once or one after another, and nothing of the
file is left when they are done (app/upload_ledger.py)."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from pipelines.data.phantoms import render

gradio_client = pytest.importorskip("gradio_client")
TWINS = 8
EDIT = dict(anatomy="Chest X-ray showing pleural effusion", style="no devices", to_anatomy="", to_style="",
            sliders='{"pacemaker": 1.0}', swap_at=0.3, seed=2, steps=2, anatomy_scale=3.0, style_scale=3.0,
            model="", locality=0.0, edit_mask=None, keep_mask=None, refresh=0.0)


@pytest.fixture(scope="module")
def twin_file(tmp_path_factory):
    image = render("cxr", {"effusion": True, "pacemaker": False}, seed=30_000_021, size=64).image
    path = tmp_path_factory.mktemp("twin") / f"twin-{uuid.uuid4().hex}.png"  # a name to look for on disk
    Image.fromarray(image).save(path)
    return path


def clients(url: str, n: int) -> list:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: gradio_client.Client(url, verbose=False), range(n)))


def assert_nothing_left(path):
    from app import server_folders
    assert not list(server_folders.prepare().rglob(path.name)), "an upload outlived its request"
    assert not list(server_folders.private().glob("request-*")), "a private copy outlived its request"


def test_twins_at_once_each_get_their_answer(app_url, twin_file):
    jobs = [c.submit(gradio_client.handle_file(str(twin_file)), api_name="/describe_image")
            for c in clients(app_url, TWINS)]
    answers = [job.result(timeout=300) for job in jobs]  # raises on any error
    assert len(answers) == TWINS and all(a == answers[0] for a in answers)
    assert_nothing_left(twin_file)


def test_twin_edits_at_once_are_the_same_edit(app_url, twin_file):
    jobs = [c.submit(gradio_client.handle_file(str(twin_file)), **EDIT, api_name="/edit_image")
            for c in clients(app_url, 4)]
    edited = [np.asarray(Image.open(job.result(timeout=300)[1])) for job in jobs]
    assert all(np.array_equal(e, edited[0]) for e in edited)
    assert_nothing_left(twin_file)


def test_twins_one_after_another_each_get_their_answer(app_url, twin_file):
    answers = [c.predict(gradio_client.handle_file(str(twin_file)), api_name="/describe_image")
               for c in clients(app_url, TWINS)]
    assert all(a == answers[0] for a in answers)
    again = gradio_client.Client(app_url, verbose=False)  # the same user twice
    assert [again.predict(gradio_client.handle_file(str(twin_file)), api_name="/describe_image")
            for _ in range(2)] == answers[:2]
    assert_nothing_left(twin_file)
