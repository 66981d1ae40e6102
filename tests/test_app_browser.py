"""The app in headless Chromium: a ready edit renders, a series animates, the export downloads."""

import hashlib
import json
import os
import shutil
import zipfile

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p and os.path.exists(p)), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium found (apt-get install chromium)")


@pytest.fixture(scope="module")
def page(app_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
        page.set_default_timeout(30_000)
        page.goto(app_url)
        yield page
        browser.close()


def loaded_images(page, selector: str) -> int:
    """How many <img> under selector have a src and decoded pixels."""
    return page.eval_on_selector_all(
        f"{selector} img[src]", "els => els.filter(e => e.complete && e.naturalWidth > 0).length")


def test_a_ready_edit_renders_and_exports(page, tmp_path):
    page.get_by_text("Dermoscopy: add hair").click()
    page.wait_for_function("document.querySelectorAll('#before-after img[src]').length >= 2")
    page.wait_for_selector("#difference img[src]")
    page.wait_for_function("[...document.querySelectorAll('#before-after img[src]')]"
                           ".every(e => e.complete && e.naturalWidth > 0)")
    assert loaded_images(page, "#before-after") >= 2
    assert "Model" in page.locator("#model-status").inner_text()

    page.locator("#export-edit").click()
    link = page.locator("#edit-zip a[download], #edit-zip a").first
    link.wait_for()
    with page.expect_download() as download:
        link.click()
    path = tmp_path / "export.zip"
    download.value.save_as(path)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {"frames/frame_000.png", "frames/frame_001.png", "side_by_side.png", "manifest.json"} <= names
        manifest = json.loads(archive.read("manifest.json"))
        for entry in manifest["files"]:
            assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
        assert manifest["provenance"]["to_style"].endswith("with hairs visible on skin")


def test_a_series_shows_frames_and_an_animated_gif(page):
    page.get_by_role("tab", name="Series").click()
    page.get_by_role("button", name="Make series").click()
    page.wait_for_selector("#series-animation img[src*='.gif']")
    page.wait_for_function("document.querySelectorAll('#series-frames img[src]').length >= 2")
    assert loaded_images(page, "#series-animation") == 1


def test_picking_another_model_takes_its_sampling_defaults(page, other_model_folder):
    slider_value = lambda elem_id: float(page.locator(f"#{elem_id} input[type=number]").input_value())  # noqa: E731
    page.locator("#model input").click()
    page.get_by_role("option", name=str(other_model_folder)).click()
    page.wait_for_function("document.querySelector('#model-status').innerText.includes('micro-other')")
    page.wait_for_function("document.querySelector('#swap-at input[type=number]').value == '0.45'")
    assert slider_value("swap-at") == 0.45 and slider_value("locality") == 0.0
