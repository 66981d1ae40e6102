"""The app in headless Chromium at 1366x768, a laptop's screen: the first screen holds the prompts,
the Edit button and the before/after; a ready edit renders, a series animates, the export
downloads and goes away when a new result replaces the one it holds; an image the user brings is
uploaded, described, edited by two sliders, masked and edited at once, and exported as a series.
At 390x844, a phone's: the header stacked, the Edit button in reach and the result scrolled to,
also after an upload; at both sizes every frame of a 16-frame series whole on screen. Screenshots
of the layouts go to $MEDEDIT_ARTEFACTS (default: the test's tmp folder)."""

import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.data.phantoms import render
from tests.upload_files import dicom_bytes, dicom_dataset

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p and os.path.exists(p)), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREEN = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium found (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser(app_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def opened(browser, app_url, viewport: dict, timeout_ms: int):
    """A page of the app at `viewport`, once the model's status says it is loaded."""
    page = browser.new_page(viewport=viewport, accept_downloads=True)
    page.set_default_timeout(timeout_ms)
    page.goto(app_url)
    page.wait_for_function("document.querySelector('#model-status')?.innerText?.includes('revision')")
    return page


@pytest.fixture
def page(browser, app_url):
    page = opened(browser, app_url, SCREEN, 30_000)
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


def pair_sources(page) -> list:
    return page.eval_on_selector_all("#before-after img[src]", "els => els.map(e => e.src)")


def wait_for_new_edit(page, shown: list):
    """Wait until the before/after shows an "after" other than those in `shown`, loaded: a render
    already on screen must not pass for the one just asked for (each response writes its own files)."""
    page.wait_for_function("shown => { const s = [...document.querySelectorAll('#before-after img[src]')];"
                           " return s.length >= 2 && !shown.includes(s[s.length - 1].src); }", arg=shown)
    wait_for_edit(page)


def exported(page, what: str, path):
    """Click "Export this edit/series", download the ZIP it offers to `path`."""
    page.locator(f"#export-{what}").click()
    link = page.locator(f"#{what}-zip a[download], #{what}-zip a").first
    link.wait_for()
    with page.expect_download() as download:
        link.click()
    download.value.save_as(path)
    return path


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

    with zipfile.ZipFile(exported(page, "edit", tmp_path / "export.zip")) as archive:
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


# ---------------------------------------------------------------- your own image

def image_box(page) -> dict:
    """Where the uploaded image is drawn on the editor's canvas: centred, at the editor's zoom."""
    canvas = page.locator("#upload-editor canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    zoom = float(page.locator("#upload-editor .zoom-number").inner_text().strip("% ")) / 100
    side = UPLOAD_SHOWN * zoom
    return {"x": box["x"] + (box["width"] - side) / 2, "y": box["y"] + (box["height"] - side) / 2, "side": side}


def paint(page, box: dict, rows, left: float, right: float):
    """Brush strokes across the image, at fractions of its side."""
    for row in rows:
        y = box["y"] + row * box["side"]
        page.mouse.move(box["x"] + left * box["side"], y)
        page.mouse.down()
        page.mouse.move(box["x"] + right * box["side"], y, steps=12)
        page.mouse.up()
        page.wait_for_timeout(300)  # the editor finishes a stroke before the next begins


def shown_pixels(page, selector: str) -> list:
    """The decoded pixels of each image under `selector`, fetched as the browser got them."""
    sources = page.eval_on_selector_all(f"{selector} img[src]", "els => els.map(e => e.src)")
    return [np.asarray(Image.open(io.BytesIO(page.request.get(s).body())).convert("RGB")) for s in sources]


UPLOAD_SHOWN = 384  # the editor shows the 64-px upload enlarged to this (app/outputs.enlarge)


@pytest.fixture(scope="module")
def upload_png(tmp_path_factory):
    """A chest X-ray phantom with an effusion and no pacemaker, 128 px, as a PNG."""
    image = render("cxr", {"effusion": True, "pacemaker": False}, seed=30_000_017, size=128).image
    path = tmp_path_factory.mktemp("uploads") / "my-chest.png"
    Image.fromarray(image).save(path)
    return path


@pytest.fixture(scope="module")
def upload_jpeg(upload_png):
    path = upload_png.with_name("my-chest.jpg")
    Image.open(upload_png).convert("RGB").save(path, quality=95)
    return path


@pytest.fixture(scope="module")
def upload_dicom(upload_png):
    grey = np.asarray(Image.open(upload_png).convert("L")).astype(np.uint16) * 16
    path = upload_png.with_name("study")  # DICOM files often have no extension
    path.write_bytes(dicom_bytes(dicom_dataset(4095 - grey, photometric="MONOCHROME1")))
    return path


def test_your_own_image_upload_describe_two_sliders_keep_mask_and_series_export(page, upload_png, tmp_path):
    page.set_default_timeout(120_000)
    generated = pair_sources(page)  # none yet, unless the page renders on load
    page.get_by_role("button", name="Edit your own image (PNG, JPEG, DICOM)").click()
    page.locator("#upload-file input[type=file]").set_input_files(str(upload_png))
    page.wait_for_function("document.querySelector('#upload-notes')?.innerText?.includes('start from your image')")

    # Describe: the classifier fills the source prompts, shows its confidences, and the edit renders.
    page.locator("#describe-button").click()
    page.wait_for_function("document.querySelector('#findings')?.innerText?.includes('classifier finds')")
    assert "effusion" in page.locator("#findings").inner_text() and "%" in page.locator("#findings").inner_text()
    assert page.locator("#anatomy textarea").input_value().startswith("Chest X-ray")
    wait_for_new_edit(page, generated)
    page.wait_for_function("document.querySelector('#edit-notes')?.innerText?.includes('your image')")

    # Two sliders, each re-rendering the edit as it moves: remove the effusion, add a pacemaker.
    page.get_by_text("Add or remove a finding or artifact").click()
    for name, value in (("effusion", "-1"), ("pacemaker", "1")):
        shown = pair_sources(page)
        number = page.locator(f"#slider-{name} input[type=number]")
        number.fill(value)
        number.blur()
        wait_for_new_edit(page, shown)

    # A keep mask, red strokes over the left of the image, then Edit straight away: the edit keeps
    # what was painted when it was asked for.
    box = image_box(page)
    page.locator("#upload-editor button[aria-label=Color]").click()
    page.locator("#upload-editor menu.swatch button.color").nth(1).click()
    paint(page, box, [0.40, 0.45, 0.50, 0.55, 0.60], 0.08, 0.45)
    shown = pair_sources(page)
    page.locator("#edit-button").click()
    wait_for_new_edit(page, shown)
    assert "red area stays" in page.locator("#upload-masks").inner_text()
    before, after = shown_pixels(page, "#before-after")
    rows, columns = (slice(int(a * UPLOAD_SHOWN), int(b * UPLOAD_SHOWN)) for a, b in ((0.42, 0.58), (0.15, 0.40)))
    assert (before[rows, columns] == after[rows, columns]).all()  # the keep mask held, as painted before Edit
    assert (before != after).any()

    # The series, exported: every frame an edited upload, nothing of the file but its hash.
    page.get_by_role("tab", name="Series").click()
    page.get_by_role("button", name="Make series").click()
    page.wait_for_selector("#series-animation img[src*='.gif']")
    with zipfile.ZipFile(exported(page, "series", tmp_path / "series.zip")) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        provenance = manifest["provenance"]
        assert provenance["source"] == "upload"
        upload = provenance["extra"]
        assert {t["name"] for t in upload["terms"]} == {"effusion", "pacemaker"}
        assert upload["regions"]["keep_mask"]["share"] > 0 and "edit_mask" not in upload["regions"]
        assert upload["source_sha256"] == hashlib.sha256(upload_png.read_bytes()).hexdigest()
        assert sum(n.startswith("frames/") and n.endswith(".png") for n in archive.namelist()) >= 2
        assert upload_png.name not in json.dumps(manifest)


def test_a_dicom_and_a_jpeg_upload_say_what_was_done(page, upload_dicom, upload_jpeg):
    page.get_by_role("button", name="Edit your own image (PNG, JPEG, DICOM)").click()
    page.locator("#upload-file input[type=file]").set_input_files(str(upload_dicom))
    page.wait_for_function("document.querySelector('#upload-notes')?.innerText?.includes('DICOM')")
    assert "MONOCHROME1 inverted" in page.locator("#upload-notes").inner_text()
    # Back to generated images: the file and the notes go; another file can be brought.
    page.locator("#forget-upload").click()
    page.wait_for_function("!document.querySelector('#upload-notes')?.innerText?.trim()")
    page.locator("#upload-file input[type=file]").set_input_files(str(upload_jpeg))
    page.wait_for_function("document.querySelector('#upload-notes')?.innerText?.includes('JPEG')")


# ---------------------------------------------------------------- layouts: a phone, a series

@pytest.fixture
def artefacts(tmp_path):
    folder = os.environ.get("MEDEDIT_ARTEFACTS")
    folder = Path(folder) if folder else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def phone(browser, app_url):
    page = opened(browser, app_url, PHONE, 60_000)
    yield page
    page.close()


def in_view(page, box: dict | None) -> bool:
    """A bounding box wholly inside the viewport, wherever the page is scrolled."""
    screen = page.viewport_size
    return (box is not None and box["x"] >= 0 and box["y"] >= 0
            and box["x"] + box["width"] <= screen["width"] + 0.5 and box["y"] + box["height"] <= screen["height"] + 0.5)


def settled(page):
    """Smooth scrolls and late layout done: the scroll position still for half a second."""
    page.wait_for_function("""() => { const now = [window.scrollY, document.body.scrollHeight];
        const same = JSON.stringify(now) === window.__mededitLast; window.__mededitLast = JSON.stringify(now);
        return same; }""", polling=500)


def test_a_phone_stacks_the_header_keeps_edit_in_reach_and_scrolls_to_the_result(phone, artefacts):
    header, title = phone.locator("#mededit-header").bounding_box(), phone.locator("#mededit-header > *").first
    status = phone.locator("#model-status").bounding_box()
    assert title.bounding_box()["width"] >= 0.9 * header["width"]  # one column, not two narrow ones
    assert status["y"] >= title.bounding_box()["y"] + title.bounding_box()["height"] - 1
    assert in_view(phone, phone.locator("#edit-button").bounding_box())  # on the first screen
    phone.screenshot(path=artefacts / "phone-first-screen.png")
    # Scrolled down through the folded panels the button stays on screen (sticky).
    phone.evaluate("window.scrollTo(0, 600)")
    settled(phone)
    assert in_view(phone, phone.locator("#edit-button").bounding_box())

    phone.locator("#edit-button").click()
    wait_for_edit(phone)
    settled(phone)
    assert in_view(phone, phone.locator("#before-after").bounding_box())
    phone.screenshot(path=artefacts / "phone-after-edit.png")


def test_a_phone_upload_then_edit_brings_the_result_into_view(phone, upload_png, artefacts):
    phone.get_by_role("button", name="Edit your own image (PNG, JPEG, DICOM)").click()
    phone.locator("#upload-file input[type=file]").set_input_files(str(upload_png))
    phone.wait_for_function("document.querySelector('#upload-notes')?.innerText?.includes('start from your image')")
    phone.locator("#upload-editor canvas").first.scroll_into_view_if_needed()  # where a user paints
    settled(phone)
    button = phone.locator("#edit-button").bounding_box()
    assert in_view(phone, button), button  # no hunting for it above the editor
    assert phone.locator("#before-after").bounding_box()["y"] > PHONE["height"]  # the result is far below
    phone.screenshot(path=artefacts / "phone-upload.png")
    shown = pair_sources(phone)
    phone.mouse.click(button["x"] + button["width"] / 2, button["y"] + button["height"] / 2)
    wait_for_new_edit(phone, shown)
    settled(phone)
    assert in_view(phone, phone.locator("#before-after").bounding_box())
    phone.screenshot(path=artefacts / "phone-upload-after-edit.png")


@pytest.mark.parametrize("screen", [SCREEN, PHONE], ids=["laptop", "phone"])
def test_every_frame_of_a_16_frame_series_is_on_screen_whole(browser, app_url, screen, artefacts):
    page = browser.new_page(viewport=screen)
    page.set_default_timeout(60_000)
    page.goto(app_url)
    page.wait_for_function("document.querySelector('#model-status')?.innerText?.includes('revision')")
    page.get_by_role("tab", name="Series").click()
    assert page.locator("#series-frames").count() == 1
    page.get_by_role("button", name="Make series").click()
    page.wait_for_function("[...document.querySelectorAll('#series-frames img[src]')]"
                           ".filter(e => e.complete && e.naturalWidth > 0).length == 16")
    settled(page)
    frames = page.locator("#series-frames .thumbnail-item")
    gallery = page.locator("#series-frames").bounding_box()
    boxes = [frames.nth(i).bounding_box() for i in range(frames.count())]
    assert len(boxes) == 16
    for i, box in enumerate(boxes):
        assert in_view(page, box), (i, box)
        assert gallery["x"] <= box["x"] and box["x"] + box["width"] <= gallery["x"] + gallery["width"] + 0.5, (i, box)
        assert box["width"] >= 60, (i, box)  # still a picture, not a speck
    assert frames.nth(15).inner_text().strip() == "t=1.00"  # the last one is the edit itself
    page.screenshot(path=artefacts / f"series-{screen['width']}x{screen['height']}.png")
    page.close()
