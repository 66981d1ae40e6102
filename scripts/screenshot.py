"""Write assets/screenshot.png: launch the app, run one ready edit in headless Chromium, capture
the first screen (the viewport, 1366x768 by default: what a laptop shows without scrolling).

    python scripts/screenshot.py [--example "Chest X-ray: add a pacemaker"] [--out assets/screenshot.png]

Uses the model in $MEDEDIT_MODEL (default: the embedded one) and Chromium at /usr/bin/chromium.
"""

import argparse
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def capture(out, example: str, width: int = 1366, height: int = 768, chromium: str = "/usr/bin/chromium") -> list:
    """Launch the app, click the ready edit `example`, save the first screen to `out`; returns the
    before and after images as the page showed them (RGB arrays), for a test to judge."""
    import io

    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright
    from app.ui import build_ui, launch_options

    demo = build_ui()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text(example).click()
            page.wait_for_function("[...document.querySelectorAll('#before-after img[src]')]"
                                   ".filter(e => e.complete && e.naturalWidth > 0).length >= 2")
            page.wait_for_selector("#difference img[src]")
            page.wait_for_timeout(500)  # let the toasts and progress bars fade
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            page.evaluate("window.scrollTo(0, 0)")  # the example list is below: back to the first screen
            page.wait_for_timeout(300)
            page.screenshot(path=str(out))
            sources = page.eval_on_selector_all("#before-after img[src]", "els => els.map(e => e.src)")
            shown = [np.asarray(Image.open(io.BytesIO(page.request.get(s).body())).convert("RGB")) for s in sources]
            browser.close()
    finally:
        demo.close()
    return shown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default="Chest X-ray: add a pacemaker", help="label of a ready edit")
    parser.add_argument("--out", default="assets/screenshot.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1366)
    parser.add_argument("--height", type=int, default=768)
    args = parser.parse_args()
    capture(args.out, args.example, args.width, args.height, args.chromium)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
