"""A page in headless Chromium that reports what it saw: served from a loopback HTTP server of the test, which
also receives the page's report (a POST to /report), so the check is made in the browser, by the page."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Added to the page under test: watches its <img> and its frame id text; reports once FRAMES images rendered.
OBSERVER = """
<script>
(() => {
  const img = document.getElementById("frame");
  const texts = [];
  const report = (body) => fetch("/report", {method: "POST", body: JSON.stringify(body)});
  img.addEventListener("load", () => {
    if (texts.length === FRAMES) return;
    texts.push(document.getElementById("info").textContent);
    if (texts.length === FRAMES) report({texts, width: img.naturalWidth, height: img.naturalHeight});
  });
  img.addEventListener("error", () => report({error: "the image did not decode", src: img.src.slice(0, 80)}));
})();
</script>
"""


def open_page(chromium: str, page: str, workdir: Path, frames: int, timeout: float = 60) -> dict:
    """Opens `page` (HTML text with an <img id=frame> and a <p id=info>) in headless Chromium and returns the
    page's report; raises TimeoutError with Chromium's output if none came."""
    html = page.replace("</body>", OBSERVER.replace("FRAMES", str(frames)) + "</body>").encode()
    reports: queue.Queue[dict] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def do_POST(self) -> None:
            reports.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log = workdir / "chromium.log"
    # Chromium's temporary files, its SingletonSocket among them, in a directory of their own, short enough
    # for a Unix socket path (108 bytes; pytest's numbered tmp_path is not, past a thousand sessions).
    scratch = tempfile.TemporaryDirectory(prefix="drishti-chromium-")
    browser = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={workdir / 'chromium-profile'}",
            f"http://127.0.0.1:{server.server_port}/",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "TMPDIR": scratch.name},
    )
    try:
        return reports.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(
            f"no report from the page within {timeout}s; Chromium said:\n{log.read_text()}"
        ) from None
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        server.shutdown()
        server.server_close()
        scratch.cleanup()
