"""Open every page of the built book in headless Chromium and check what a reader would see.

    python ci/check_site.py _build/html [--screenshots DIR]

For each page of the table of contents (served over HTTP on localhost, as a reader's browser gets
it), what a reader would notice:

- the page loads and has a body;
- every image has loaded (naturalWidth > 0);
- no executed cell shows an error (myst-nb renders a cell's exception as ``.output.traceback``) and no
  output holds a Python traceback;
- every figure (an image in a cell's output) is at least half as wide as the text column and no wider
  than it, so its text reads at the size of the page's;
- nothing sticks out of the page: a wide table scrolls inside its own box, the page never scrolls
  sideways;
- every table reads as text for people: no cell says NaN, nan% or None, and no column header is a
  snake_case identifier (knn_accuracy);
- every figure has a caption (a cell's image sits in a ``<figure>`` with its ``<figcaption>``);
- the intro opens with the "What we found" block, a table with a verdict for every claim. Uses Debian's ``chromium`` and
``chromium-driver`` through selenium. When $CI is set, a missing browser fails the run; elsewhere it
is skipped with a message (exit 0), since the rest of the book does not need it.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_book import toc_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "install it with: apt-get install -y chromium chromium-driver"

# JavaScript run in each page: the facts the check needs, as one JSON-able object
PAGE_FACTS = """
const imgs = Array.from(document.images);
return {
  title: document.title,
  ready: document.readyState,
  images: imgs.length,
  pending: imgs.filter(i => !i.complete).map(i => i.src),
  broken: imgs.filter(i => i.complete && i.naturalWidth === 0).map(i => i.src),
  errors: Array.from(document.querySelectorAll('.output.traceback')).map(e => e.innerText.slice(0, 300))
    .concat(Array.from(document.querySelectorAll('.cell_output, .output'))
      .filter(e => e.innerText.includes('Traceback (most recent call last)')).map(e => e.innerText.slice(0, 300))),
  column: (() => { const a = document.querySelector('article.bd-article, main, .bd-content');
                   return a ? a.clientWidth : 0; })(),
  figures: Array.from(document.querySelectorAll('.cell_output img, figure img, .output img'))
    .map(i => ({src: i.src.split('/').pop().slice(0, 40), width: Math.round(i.getBoundingClientRect().width)})),
  sideways: document.documentElement.scrollWidth - window.innerWidth,
  findings: ((document.getElementById('what-we-found') || {}).innerText || '').length,
  verdicts: document.querySelectorAll('#what-we-found table tbody tr').length,
  absent: Array.from(document.querySelectorAll('table td, table th')).map(c => c.innerText.trim())
    .filter(t => /^(nan%?|None)$/i.test(t) || /\bNaN\b/.test(t)).slice(0, 5),
  snake: Array.from(document.querySelectorAll('table thead th')).map(c => c.innerText.trim())
    .filter(t => /^[a-z0-9]+(_[a-z0-9]+)+$/.test(t)).slice(0, 5),
  uncaptioned: Array.from(document.querySelectorAll('.cell_output img, .output img'))
    .filter(i => { const f = i.closest('figure'); return !f || !f.querySelector('figcaption'); })
    .map(i => i.src.split('/').pop().slice(0, 40)),
  // while a page is still loading it may have no body yet: the caller polls until readyState is complete
  main: ((document.querySelector('main, article, .bd-article') || document.body || {}).innerText || '').length,
};
"""


def find_browser() -> tuple[str, str] | None:
    browser = next((shutil.which(b) for b in CHROMIUM if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            # the browser drops connections it no longer needs (prefetches); that is not a site error
            if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def start_browser(browser: str, driver: str, profile_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    # without the background-networking flags Chromium keeps dialling Google's hosts, which this
    # offline machine refuses; --no-sandbox because CI runs as root
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={profile_dir}", "--window-size=1280,1600"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def check_page(driver, url: str, shot: Path | None, intro: bool = False) -> list[str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            if resp.status != 200:
                return [f"HTTP {resp.status}"]
    except OSError as exc:
        return [f"does not load: {exc}"]
    driver.get(url)
    deadline = time.time() + 20
    facts = driver.execute_script(PAGE_FACTS)
    while (facts["ready"] != "complete" or facts["pending"]) and time.time() < deadline:
        time.sleep(0.2)
        facts = driver.execute_script(PAGE_FACTS)
    if shot is not None:  # the whole page: grow the window to the document's height first
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 100, 16000))
        driver.save_screenshot(str(shot))
        driver.set_window_size(1280, 1600)
    problems = []
    if facts["ready"] != "complete":
        problems.append("page never finished loading")
    if facts["main"] < 50:
        problems.append("page body is (nearly) empty")
    problems += [f"image still loading after 20 s: {src}" for src in facts["pending"]]
    problems += [f"image failed to load (naturalWidth 0): {src}" for src in facts["broken"]]
    problems += [f"executed cell shows an error: {text!r}" for text in facts["errors"]]
    column = facts["column"]
    for fig in facts["figures"]:
        if column and fig["width"] and fig["width"] < column / 2:
            problems.append(f"figure {fig['src']} is {fig['width']} px wide, under half the {column} px text column")
        if column and fig["width"] > column + 1:
            problems.append(f"figure {fig['src']} is {fig['width']} px wide, wider than the {column} px text column")
    problems += [f"a table shows {text!r} where a value is absent: write it as '—' or 'not saved'"
                 for text in facts["absent"]]
    problems += [f"a table's column header is an identifier, {text!r}: give it a reader's name" for text in facts["snake"]]
    problems += [f"figure {src} has no caption" for src in facts["uncaptioned"]]
    if facts["sideways"] > 2:
        problems.append(f"the page scrolls sideways by {facts['sideways']} px: something is wider than the window")
    if intro and (facts["findings"] < 50 or facts["verdicts"] < 7):
        problems.append(f"the intro lacks the 'What we found' block, a table of the seven claims' verdicts "
                        f"(block text {facts['findings']} chars, {facts['verdicts']} rows)")
    print(f"  {url}: {facts['images']} images, {len(facts['figures'])} figures (column {facts['column']} px), "
          f"title {facts['title']!r}: "
          + ("ok" if not problems else f"{len(problems)} problem(s)"), flush=True)
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("html", type=Path, nargs="?", default=ROOT / "_build" / "html")
    ap.add_argument("--toc", type=Path, default=ROOT / "book" / "_toc.yml")
    ap.add_argument("--screenshots", type=Path, help="save a PNG of every page here")
    args = ap.parse_args()

    if not (args.html / "index.html").is_file():
        print(f"no book at {args.html}: build it first (make book)", file=sys.stderr)
        return 1
    found = find_browser()
    if found is None:
        message = f"headless Chromium and chromedriver not found; {INSTALL_HINT}"
        if os.environ.get("CI"):
            print(f"FAIL: {message} (CI is set, so the site check cannot be skipped)", file=sys.stderr)
            return 1
        print(f"SKIPPED the browser check: {message}")
        return 0

    pages = [f"{f}.html" for f in toc_files(yaml.safe_load(args.toc.read_text()))]
    missing = [p for p in pages if not (args.html / p).is_file()]
    if missing:
        print(f"FAIL: pages of the table of contents missing from {args.html}: {missing}", file=sys.stderr)
        return 1
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)

    server, base = serve(args.html)
    failures: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="clorg-chromium-") as profile_dir:
        driver = start_browser(*found, profile_dir)
        try:
            print(f"checking {len(pages)} pages of {args.html} in {found[0]}:")
            for page in ["index.html", *pages]:
                shot = args.screenshots / (page.replace("/", "_") + ".png") if args.screenshots else None
                problems = check_page(driver, f"{base}/{page}", shot, intro=page == "book/intro.html")
                if problems:
                    failures[page] = problems
        finally:
            driver.quit()
            server.shutdown()
    if failures:
        for page, problems in failures.items():
            print(f"FAIL {page}:\n    " + "\n    ".join(problems), file=sys.stderr)
        return 1
    print(f"site check passed: {len(pages) + 1} pages: every image loaded, no cell errors or tracebacks, figures "
          f"within the text column, nothing wider than the page, the findings block on the intro")
    return 0


if __name__ == "__main__":
    sys.exit(main())
