#!/usr/bin/env python3
"""Drives the aemp dashboard in headless Chromium (Debian chromium + chromium-driver, Selenium).

    scripts/dashboard-browser.py --url http://127.0.0.1:8080/ [--nodes 3] [--links 2]
        [--down-from-stdin --down-within 5] [--screenshot .build/dashboard.png] [--timeout 30]

Opens the page, waits until its graph shows at least --nodes nodes, all up, and at least --links
connections, and prints `READY <json>`. With --down-from-stdin it then reads a node ID from standard
input (the caller kills that node and writes its ID), waits until the page marks that node down
(or unreachable), and prints `DOWN <node> <seconds>`, failing after --down-within seconds. Finally it
saves a screenshot of the page and prints `SCREENSHOT <path>`.

Exit status: 0 when every check passed, 1 when a check failed (the reason on standard error),
2 when the browser could not be started (Selenium, chromium or chromedriver missing or broken).
Every wait is bounded.
"""
import argparse
import json
import os
import shutil
import sys
import time

GRAPH_JS = """
return {
  nodes: Array.from(document.querySelectorAll('#graph g.node')).map(function (g) {
    return {id: g.getAttribute('data-id'), state: g.getAttribute('data-state'),
            implementation: g.getAttribute('data-implementation'), self: g.classList.contains('self')};
  }),
  links: Array.from(document.querySelectorAll('#graph g.link')).map(function (g) {
    return [g.getAttribute('data-from'), g.getAttribute('data-to')];
  }),
  status: (document.getElementById('status') || {}).textContent,
  events: Array.from(document.querySelectorAll('#events li .text')).map(function (e) { return e.textContent; })
};
"""


def start_browser(width, height):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        raise RuntimeError("Selenium is not installed (python3 -m pip install selenium): %s" % error)
    browser = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser"),
                                shutil.which("google-chrome")) if p and os.path.exists(p)), None)
    driver_path = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver",
                                    "/usr/lib/chromium/chromedriver") if p and os.path.exists(p)), None)
    if not browser or not driver_path:
        raise RuntimeError("headless Chromium needs the Debian packages chromium and chromium-driver "
                           "(browser: %s, driver: %s)" % (browser, driver_path))
    options = Options()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=%d,%d" % (width, height), "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    # Never let Selenium Manager look for a browser or driver on the network.
    os.environ["SE_OFFLINE"] = "true"
    try:
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except Exception as error:  # the message says what is wrong (versions, sandbox, display)
        raise RuntimeError("headless Chromium did not start: %s" % str(error).strip().splitlines()[0])
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(10)
    return driver


def wait(condition, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--links", type=int, default=2)
    parser.add_argument("--down-from-stdin", action="store_true")
    parser.add_argument("--down-within", type=float, default=5.0)
    parser.add_argument("--screenshot")
    parser.add_argument("--settle", type=float, default=0.0, help="seconds to wait before the screenshot")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1250)
    arguments = parser.parse_args()

    try:
        driver = start_browser(arguments.width, arguments.height)
    except RuntimeError as error:
        print("BROWSER-UNAVAILABLE %s" % error, file=sys.stderr, flush=True)
        return 2
    try:
        driver.get(arguments.url)
        graph = lambda: driver.execute_script(GRAPH_JS)

        def ready():
            state = graph()
            up = [n for n in state["nodes"] if n["state"] == "up"]
            return state if len(up) >= arguments.nodes and len(state["links"]) >= arguments.links else None

        state = wait(ready, arguments.timeout)
        if not state:
            print("the graph did not show %d nodes up and %d links within %.0f s: %s"
                  % (arguments.nodes, arguments.links, arguments.timeout, json.dumps(graph())), file=sys.stderr)
            return 1
        print("READY " + json.dumps(state, sort_keys=True), flush=True)

        if arguments.down_from_stdin:
            victim = sys.stdin.readline().strip()
            started = time.monotonic()

            def marked_down():
                for node in graph()["nodes"]:
                    if node["id"] == victim and node["state"] in ("down", "unreachable"):
                        return True
                return False

            if not wait(marked_down, arguments.down_within, 0.05):
                print("the page did not mark %s down within %.1f s: %s"
                      % (victim, arguments.down_within, json.dumps(graph())), file=sys.stderr)
                return 1
            print("DOWN %s %.2f" % (victim, time.monotonic() - started), flush=True)

        if arguments.screenshot:
            time.sleep(arguments.settle)
            directory = os.path.dirname(os.path.abspath(arguments.screenshot))
            os.makedirs(directory, exist_ok=True)
            if not driver.save_screenshot(arguments.screenshot):
                print("could not save the screenshot to %s" % arguments.screenshot, file=sys.stderr)
                return 1
            print("SCREENSHOT %s" % arguments.screenshot, flush=True)
        return 0
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
