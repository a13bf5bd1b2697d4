"""Screenshots of the built book for the README and book/images/: the parts a reader looks at first.

    python ci/screenshots.py _build/html book/images

Opens the built site in headless Chromium (as ci/check_site.py does), photographs one element of each
page below (the findings block of the intro and of the report, the first figure with its caption of
chapters 03, 05 and 07) and saves it as a small PNG (at most WIDTH pixels wide, a 64-colour palette).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_site import find_browser, serve, start_browser  # noqa: E402

WIDTH = 760
SHOTS = {  # file name -> (page, CSS selector of the part to photograph)
    "intro.png": ("book/intro.html", "#what-we-found"),
    "report.png": ("notebooks/09_report.html", "#what-we-found"),
    "03_neighbours.png": ("notebooks/03_embeddings.html", "figure"),
    "05_tsne.png": ("notebooks/05_tsne.html", "figure"),
    "07_dynamics.png": ("notebooks/07_dynamics.html", "figure"),
}


def small_png(png: bytes) -> bytes:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > WIDTH:
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
    out = io.BytesIO()
    image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("html", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    found = find_browser()
    if found is None:
        print("headless Chromium and chromedriver not found: apt-get install -y chromium chromium-driver", file=sys.stderr)
        return 1
    from selenium.webdriver.common.by import By

    args.out.mkdir(parents=True, exist_ok=True)
    server, base = serve(args.html)
    with tempfile.TemporaryDirectory(prefix="clorg-chromium-") as profile_dir:
        driver = start_browser(*found, profile_dir)
        try:
            driver.set_window_size(1280, 2400)
            for name, (page, selector) in SHOTS.items():
                driver.get(f"{base}/{page}")
                time.sleep(1.0)
                element = driver.find_element(By.CSS_SELECTOR, selector)
                driver.execute_script("arguments[0].scrollIntoView();", element)
                data = small_png(element.screenshot_as_png)
                (args.out / name).write_bytes(data)
                print(f"{args.out / name}: {len(data) / 1024:.0f} KB from {page} {selector}")
        finally:
            driver.quit()
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
