"""The domain check in headless Chromium: a CT slice uploaded in the panel is refused on screen,
Edit says why and how to go on; with "Edit anyway" ticked the edit runs and its notes say so. (The
app's micro model is judged by the shipped statistics while the test runs: they depend only on
the classifier.)"""

import os
import shutil
from pathlib import Path

import pytest
from pydicom.data.data_manager import DATA_ROOT

from app import state
from pipelines.evaluation.domain import load_domain_check

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p and os.path.exists(p)), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
CT = Path(DATA_ROOT, "test_files", "CT_small.dcm")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium found (apt-get install chromium)")


@pytest.fixture
def page(app_url, monkeypatch):
    monkeypatch.setattr(state.get_pipeline(), "domain_check", load_domain_check("embedded"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.set_default_timeout(120_000)
        page.goto(app_url)
        page.wait_for_function("document.querySelector('#model-status')?.innerText?.includes('revision')")
        yield page
        browser.close()


def shows(page, selector: str, text: str):
    page.wait_for_function("([s, t]) => document.querySelector(s)?.innerText?.includes(t)", arg=[selector, text])


def test_a_ct_slice_is_refused_on_screen_and_edited_only_when_asked(page):
    page.get_by_role("button", name="Edit your own image (PNG, JPEG, DICOM)").click()
    page.locator("#upload-file input[type=file]").set_input_files(str(CT))
    shows(page, "#upload-notes", "Refused: not an image of a modality this model knows")
    assert "feature distance" in page.locator("#upload-notes").inner_text()

    page.locator("#edit-button").click()  # refused: the error says why and how to go on
    shows(page, "body", "To edit it all the same")

    page.locator("#edit-anyway input[type=checkbox]").check()
    page.locator("#edit-button").click()
    shows(page, "#edit-notes", "edited anyway: not an image of a modality")
