"""The app in headless Chromium at 1366x768, a laptop's screen: the first screen holds the prompts,
the Edit button and the before/after; a ready edit renders, a series animates, the export
downloads and goes away when a new result replaces the one it holds."""

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
SCREEN = {"width": 1366, "height": 768}
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium found (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser(app_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page(viewport=SCREEN, accept_downloads=True)
    page.set_default_timeout(30_000)
    page.goto(app_url)
    page.wait_for_function("document.querySelector('#model-status')?.innerText?.includes('revision')")
    yield page
    page.close()


def loaded_images(page, selector: str) -> int:
    """How many <img> under selector have a src and decoded pixels."""
    return page.eval_on_selector_all(
        f"{selector} img[src]", "els => els.filter(e => e.complete && e.naturalWidth > 0).length")


def wait_for_edit(page):
    page.wait_for_function("[...document.querySelectorAll('#before-after img[src]')]"
                           ".filter(e => e.complete && e.naturalWidth > 0).length >= 2")
    page.wait_for_selector("#difference img[src]")


def on_screen(page, selector: str) -> bool:
    """The element wholly inside the viewport, the page not scrolled."""
    box = page.locator(selector).bounding_box()
    scrolled = page.evaluate("window.scrollY")
    return (scrolled == 0 and box is not None and box["x"] >= 0 and box["y"] >= 0
            and box["x"] + box["width"] <= SCREEN["width"] and box["y"] + box["height"] <= SCREEN["height"])


def test_the_first_screen_holds_the_prompts_the_button_and_the_result(page):
    for selector in ("#anatomy", "#style", "#to-anatomy", "#to-style", "#edit-button"):
        assert on_screen(page, selector), selector
    page.locator("#edit-button").click()
    # The progress shows on the result itself, so it is in view while the edit runs.
    page.wait_for_selector("#before-after .progress-text, #before-after img[src]")
    wait_for_edit(page)
    for selector in ("#edit-button", "#before-after", "#difference"):
        assert on_screen(page, selector), selector
    assert loaded_images(page, "#before-after") >= 2


def test_words_the_model_did_not_learn_are_flagged_beside_the_prompts(page):
    page.locator("#to-anatomy textarea").fill("Chest X-ray with a pneumothorax, lateral view")
    page.wait_for_function("document.querySelector('#edit-words')?.innerText?.includes('not learned')")
    assert "pneumothorax" in page.locator("#edit-words").inner_text()
    assert "lateral" in page.locator("#edit-words").inner_text()
    assert "not learned" not in page.locator("#source-words").inner_text()
    assert on_screen(page, "#edit-words")


def test_a_ready_edit_renders_exports_and_a_new_result_clears_the_export(page, tmp_path):
    page.get_by_text("Dermoscopy: add hair").click()
    wait_for_edit(page)
    page.wait_for_function("document.querySelector('#edit-notes')?.innerText?.includes('computed')")

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

    # Another edit: the ZIP of the previous one is no longer offered.
    page.locator("#to-style textarea").fill("light skin, even lighting, with a ruler visible")
    page.locator("#edit-button").click()
    page.wait_for_selector("#edit-zip", state="detached")
    wait_for_edit(page)
    assert page.locator("#edit-zip a").count() == 0


def test_a_series_shows_frames_and_an_animated_gif(page):
    page.get_by_role("tab", name="Series").click()
    page.get_by_role("button", name="Make series").click()
    page.wait_for_selector("#series-animation img[src*='.gif']")
    page.wait_for_function("document.querySelectorAll('#series-frames img[src]').length >= 2")
    assert loaded_images(page, "#series-animation") == 1


def test_picking_another_model_takes_its_sampling_defaults(page, other_model_folder):
    slider_value = lambda elem_id: float(page.locator(f"#{elem_id} input[type=number]").input_value())  # noqa: E731
    page.get_by_text("Model", exact=True).first.click()  # unfold the model panel
    page.locator("#model input").click()
    page.get_by_role("option", name=str(other_model_folder)).click()
    page.wait_for_function("document.querySelector('#model-status').innerText.includes('micro-other')")
    page.get_by_text("Edit strength and settings").click()
    page.wait_for_function("document.querySelector('#swap-at input[type=number]')?.value == '0.45'")
    assert slider_value("swap-at") == 0.45 and slider_value("locality") == 0.0
