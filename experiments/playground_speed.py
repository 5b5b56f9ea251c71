"""How fast the playground shows training: updates per second from the server and on the page.

1. The server's Server-Sent Events per second while playing (every update carries every unit's
   50x50 heatmap, the weights and the history), for the seed network 2-4-6-6-4-1 on 1000 circles
   points and for 2-32-32-32-1, over --seconds each.
2. With a browser (Debian's chromium and Playwright's Python package), the page's own rate: the
   updates it drew per second (window.playground.status().rendered over time), the milliseconds
   of its own JavaScript per draw and per second (parsing events and drawing), and the main
   thread's worst lateness of a 50 ms timer meanwhile (a blocked page fires late).
3. With a browser, the README's screenshots of the page training circles and spiral.
Targets (issue 19): at least 20 updates/s for the seed network and 10 for the 32-wide one, on 2 cores.

    python experiments/playground_speed.py --out results/playground_speed
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import urllib.request

from _common import Summary, output_dir, parser

NETWORKS = {"2-4-6-6-4-1": [4, 6, 6, 4], "2-32-32-32-1": [32, 32, 32]}
TARGETS = {"2-4-6-6-4-1": 20.0, "2-32-32-32-1": 10.0}


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def sse_rate(base: str, layers: list[int], seconds: float) -> dict:
    """Updates per second that one session's event stream delivers while playing."""
    sid = _post(base + "api/sessions", {"config": {"layers": layers, "n_points": 1000}})["id"]
    times: list[float] = []
    epochs: list[int] = []
    stop = threading.Event()

    def read():
        with urllib.request.urlopen(base + f"api/sessions/{sid}/events", timeout=30) as r:
            for line in r:
                if line.startswith(b"data: "):
                    times.append(time.perf_counter())
                    epochs.append(json.loads(line[6:])["epoch"])
                if stop.is_set():
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.5)
    _post(base + f"api/sessions/{sid}/action", {"action": "play"})
    time.sleep(1.0)  # warm: the first epochs may still compile
    n0, t0, e0 = len(times), time.perf_counter(), epochs[-1]
    time.sleep(seconds)
    n1, t1, e1 = len(times), time.perf_counter(), epochs[-1]
    _post(base + f"api/sessions/{sid}/action", {"action": "pause"})
    stop.set()
    urllib.request.urlopen(urllib.request.Request(base + f"api/sessions/{sid}", method="DELETE")).read()
    return {"updates_per_s": (n1 - n0) / (t1 - t0), "epochs_per_s": (e1 - e0) / (t1 - t0)}


def _browser_path() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


# the README's screenshots: circles on the seed network; spiral on a wider one with sin features and Adam
SCREENSHOTS = {
    "playground_circles.png": ("#dataset=circles", 150),
    "playground_spiral.png": ("#dataset=spiral&layers=6,6,6,4&features=x1,x2,sin(x1),sin(x2)&optimizer=adam"
                              "&learning_rate=0.01", 350),
}


def screenshots(base: str, out: str) -> list[str]:
    """The page training each of SCREENSHOTS up to its epoch, paused, saved as PNGs into out."""
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_browser_path(), args=["--no-sandbox"])
        for name, (hash_, epochs) in SCREENSHOTS.items():
            page = browser.new_page(viewport={"width": 1400, "height": 820})
            page.goto(base + hash_)
            page.wait_for_function("window.playground && window.playground.status().updates >= 1")
            if "spiral" in name:
                page.check("#show-test")
            page.click("#play")
            page.wait_for_function(f"window.playground.status().epoch >= {epochs}", timeout=120_000)
            page.click("#pause")
            page.wait_for_function("!window.playground.status().playing")
            page.screenshot(path=os.path.join(out, name), full_page=True)
            written.append(name)
            page.close()
        browser.close()
    return written


def page_rate(base: str, layers: list[int], seconds: float) -> dict | None:
    """Updates drawn per second by the page and the main thread's worst timer lateness, or None
    when no browser is available."""
    path = _browser_path()
    if path is None:
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 820})
        page.goto(base + "#layers=" + ",".join(map(str, layers)))
        page.wait_for_function("window.playground && window.playground.status().updates >= 1")
        page.click("#play")
        page.wait_for_timeout(1000)
        page.evaluate("window.playground.resetLateness()")
        s0, t0 = page.evaluate("window.playground.status()"), time.perf_counter()
        page.wait_for_timeout(seconds * 1000)
        s1, t1 = page.evaluate("window.playground.status()"), time.perf_counter()
        late = page.evaluate("window.playground.lateness()")
        page.click("#pause")
        browser.close()
    dt = t1 - t0
    return {"rendered_per_s": (s1["rendered"] - s0["rendered"]) / dt,
            "received_per_s": (s1["received"] - s0["received"]) / dt, "worst_lateness_ms": late["max_ms"],
            "js_ms_per_s": (s1["parse_ms"] + s1["render_ms"] - s0["parse_ms"] - s0["render_ms"]) / dt,
            "ms_per_draw": (s1["render_ms"] - s0["render_ms"]) / max(1, s1["rendered"] - s0["rendered"])}


def main(argv=None) -> dict:
    p = parser("playground_speed", __doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0, help="seconds measured per network (default: %(default)s)")
    args = p.parse_args(argv)
    seconds = 2.0 if args.quick else args.seconds
    s = Summary("Playground: updates per second (50x50 heatmaps of every unit, 1000 points)")
    out = output_dir(args.out)
    from fnn.playground import server

    srv, _, base = server.start(port=0)
    try:
        rows, result = [], {}
        for name, layers in NETWORKS.items():
            sse = sse_rate(base, layers, seconds)
            page = page_rate(base, layers, seconds)
            result[name] = {"sse": sse, "page": page}
            rows.append([name, sse["updates_per_s"], sse["epochs_per_s"],
                         float("nan") if page is None else page["rendered_per_s"],
                         float("nan") if page is None else page["ms_per_draw"],
                         float("nan") if page is None else page["js_ms_per_s"],
                         float("nan") if page is None else page["worst_lateness_ms"], TARGETS[name]])
        shots = [] if args.quick or _browser_path() is None else screenshots(base, out)
    finally:
        srv.shutdown()
        srv.server_close()
    s.add(f"cores: {os.cpu_count()}, {seconds:g} s per network")
    header = ["network", "server updates/s", "epochs/s", "page draws/s", "ms per draw", "page JS ms/s",
              "worst timer lateness ms", "target updates/s"]
    s.table(header, rows, ["{}", "{:.1f}", "{:.1f}", "{:.1f}", "{:.1f}", "{:.0f}", "{:.0f}", "{:.0f}"], name="rates",
            timing=header[1:-1])
    s.add(f"load average while measuring: {os.getloadavg()[0]:.1f}")
    for name in NETWORKS:
        met = result[name]["sse"]["updates_per_s"] >= TARGETS[name]
        s.add(f"{name}: target of {TARGETS[name]:g} updates/s {'met' if met else 'NOT met'}")
    s.record("targets", TARGETS)
    s.add("screenshots: " + (", ".join(shots) if shots else "none (no browser, or --quick)"))
    s.write(out)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
