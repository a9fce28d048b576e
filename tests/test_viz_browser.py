"""kedro-viz as a person sees it: the built static site opened in headless Chromium.

Needs Debian's Chromium at /usr/bin/chromium (``bash scripts/install_browser.sh``) and the
``playwright`` Python package, which drives that executable (``playwright install`` is never run).
The site is served from 127.0.0.1 only, and the page may fetch nothing from anywhere else.
Screenshots go to data/08_reporting/ of the repository (git-ignored) for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "data" / "08_reporting"
TIMEOUT_MS = 60_000  # one page load or wait; the machine may be busy
NAMESPACES = {"base", "finetuned"}

pytestmark = [
    pytest.mark.slow,  # a Kedro run, kedro viz build and Chromium
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: run `bash scripts/install_browser.sh` (Debian's chromium)"
    ),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt)")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def viz_build(movie_run_project: Path) -> Path:
    """``kedro viz build --include-previews`` on a project whose movie pipelines (base) ran."""
    kedro = Path(sys.executable).with_name("kedro")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    result = subprocess.run(
        [str(kedro), "viz", "build", "--include-previews"],
        cwd=movie_run_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return movie_run_project / "build"


@pytest.fixture(scope="module")
def site_url(viz_build: Path) -> Iterator[str]:
    """The built site on a free port of 127.0.0.1, served from a thread for the module's tests."""
    handler = functools.partial(_QuietHandler, directory=str(viz_build))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 10
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(site_url: str, tmp_path_factory: pytest.TempPathFactory):
    """Headless Chromium with a fresh profile; any request that is not for the local site is aborted."""
    with playwright_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # Playwright passes it as --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1800, "height": 1050},
            timeout=TIMEOUT_MS,
        )
        context.set_default_timeout(TIMEOUT_MS)
        # kedro-viz asks for a web font; offline and private, nothing leaves 127.0.0.1.
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(site_url) else route.abort())
        try:
            yield context
        finally:
            context.close()


def _open(browser, url: str):
    """Open ``url``, wait for the flowchart and close the feature-hints pop-up kedro-viz shows at first."""
    page = browser.new_page()
    page.goto(url, wait_until="load")
    page.wait_for_selector(".pipeline-flowchart__nodes .pipeline-node")
    close = page.locator(".feature-hints__close")
    try:
        close.wait_for(state="visible", timeout=5_000)
        close.click()
        close.wait_for(state="detached", timeout=5_000)
    except playwright_api.TimeoutError:
        pass  # no pop-up in this kedro-viz version or profile
    try:  # then a toast "You can revisit these hints ..." fades out
        page.locator("[class^='feature-hints']").first.wait_for(state="detached", timeout=10_000)
    except playwright_api.TimeoutError:
        pass
    return page


def _flowchart_namespaces(page) -> set[str]:
    return {t.strip() for t in page.locator(".pipeline-node--modularPipeline .pipeline-node__text").all_text_contents()}


def _open_pipeline_list(page) -> list[str]:
    page.locator(".pipeline-list .dropdown__label").click()
    options = page.locator(".pipeline-list .dropdown__options .menu-option")
    options.first.wait_for(state="visible")
    return [t.strip() for t in options.all_inner_texts()]


def test_every_registered_pipeline_and_both_namespaces_show_in_the_browser(browser, site_url, movie_run_project):
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(movie_run_project)
    registered = set(pipelines)
    assert {"__default__", "movie_embedding", "ridge_analysis"} <= registered

    page = _open(browser, site_url + "/")
    assert page.locator(".pipeline-list .dropdown__label").inner_text().strip() == "__default__"
    assert NAMESPACES <= _flowchart_namespaces(page), "the default pipeline shows base and finetuned as namespaces"
    # the sidebar's tree lists them too
    tree = {t.strip() for t in page.locator(".pipeline-nodelist .node-list-tree-item-row .row-text").all_inner_texts()}
    assert NAMESPACES <= tree

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "kedro_viz.png"))

    listed = _open_pipeline_list(page)
    assert sorted(listed) == sorted(registered), "the pipeline selector offers every registered pipeline"

    # a movie pipeline chosen in the selector: only its nodes, both namespaces
    page.locator(".pipeline-list .dropdown__options .menu-option", has_text="ridge_analysis").first.click()
    page.wait_for_function(
        "() => document.querySelector('.pipeline-list .dropdown__label').innerText.trim() === 'ridge_analysis'"
    )
    page.wait_for_selector(".pipeline-node--modularPipeline")
    assert _flowchart_namespaces(page) == NAMESPACES
    data_nodes = {t.strip() for t in page.locator(".pipeline-node--data .pipeline-node__text").all_text_contents()}
    assert {"ratings", "users", "base.ridge_metrics", "finetuned.ridge_metrics"} <= data_nodes
    page.mouse.move(5, 1000)  # no hover highlight in the picture
    page.wait_for_timeout(1_000)  # the zoom-to-fit transition
    page.screenshot(path=str(SCREENSHOTS / "kedro_viz_ridge_analysis.png"))
    page.close()


def test_dataset_previews_show_a_table_and_a_figure(browser, site_url, movie_run_project):
    # a table: the first rows of the CSV the run wrote
    page = _open(browser, site_url + "/?pid=ridge_analysis&sn=base.top_coefficients")
    table = page.locator(".pipeline-metadata .preview-table")
    table.wait_for(state="visible")
    headers = [t.strip() for t in table.locator(".preview-table__header").all_inner_texts()]
    written = pd.read_csv(movie_run_project / "data/08_reporting/base/top_coefficients.csv")
    assert headers[-len(written.columns) :] == list(written.columns)
    rows = table.locator(".preview-table__row")
    assert rows.count() == 5  # kedro-datasets' default preview length
    assert written["feature"].iloc[0] in rows.first.inner_text()
    page.close()

    # a figure: the PNG the run wrote, inline in the metadata panel
    page = _open(browser, site_url + "/?pid=ridge_analysis&sn=base.top_coefficients_bar")
    image = page.locator(".pipeline-metadata__plot-image")
    image.first.wait_for(state="visible")
    source = image.first.get_attribute("src") or ""
    assert source.startswith("data:image/png;base64,")
    width = page.evaluate("el => el.naturalWidth", image.first.element_handle())
    assert width > 200, "the preview image decoded to a real picture"
    page.screenshot(path=str(SCREENSHOTS / "kedro_viz_preview.png"))
    page.close()
