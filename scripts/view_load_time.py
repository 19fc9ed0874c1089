"""Time `agentsim view` on a run in headless Chromium: the page's first paint of the run status, then each tab.

    python scripts/view_load_time.py RUN_DIR [TAB ...]     # e.g. runs/x-information-spread-... Social Agents

Starts `agentsim view RUN_DIR --port 0` as a process, opens the URL in the system Chromium (playwright) and prints
seconds from navigation until the status is shown, and for each TAB from its click until its first table or
figure is drawn. The server's start-up (importing Panel, opening the log) is printed separately.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time

#: What each tab shows once drawn.
TAB_MARKERS = {"Social": 'table[data-name="cascades"]', "Agents": ".agentsim-timeline", "Wargame": 'table[data-name="escalation-per-day"]',
               "Tournament": 'table[data-name="standings"], table[data-name="expected-scores"]', "Drift": 'table[data-name="satisfaction"]'}


def main(run_dir: str, tabs: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "agentsim", "view", run_dir, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        url = None
        while url is None and proc.poll() is None:
            m = re.search(r"http://127\.0\.0\.1:\d+/", proc.stdout.readline())
            url = m.group(0) if m else None
        print(f"server up: {time.perf_counter() - t0:.2f} s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            for visit in ("first", "second"):  # the first session also warms the server (imports, fonts)
                t = time.perf_counter()
                page.goto(url)
                page.wait_for_selector('table[data-name="per-step"]', timeout=300_000)
                print(f"{visit} page load (status and per-step counts shown): {time.perf_counter() - t:.2f} s")
                for tab in tabs:
                    t = time.perf_counter()
                    page.locator(".bk-tab", has_text=tab).click()
                    page.wait_for_selector(TAB_MARKERS.get(tab, "table.agentsim-table:visible"), timeout=300_000)
                    print(f"  tab {tab}: {time.perf_counter() - t:.2f} s")
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
