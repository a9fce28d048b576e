"""kedro-viz as a person sees it: the built static site opened in headless Chromium.

Needs Debian's Chromium at /usr/bin/chromium (``bash scripts/install_browser.sh``) and the
``playwright`` Python package, which drives that executable (``playwright install`` is never run).
The site is served from 127.0.0.1 only, and the page may fetch nothing from anywhere else.
Screenshots go to data/08_reporting/ of the repository (git-ignored) for a person to look at.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
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
# Modular pipelines drawn as one collapsible box each in the default view.
BOXES = {"base", "finetuned", "bge_finetune", "alpaca_sft", "movie_comparison", "jrte_sentiment"}
# The default view, every box closed, fits the whole graph in the window: a closed box still shows its
# inputs and its final outputs. Measured with kedro-viz 12.5 at 1800 x 1050: 27 datasets at 54 %, where
# dataset names are about 9 px high (30 at 36 % while movie_comparison read six files of each namespace,
# 52 at 13 % before the course report, the ridge reports and the reports' figures were joined).
# More than a handful of datasets back fails here: each pipeline's final outputs are its reports, and each
# movie namespace hands movie_comparison one file (<ns>.ridge_results).
DEFAULT_VIEW_MAX_DATASETS = 28
DEFAULT_VIEW_MIN_ZOOM = 50  # per cent
# What the closed box of jrte_sentiment shows: its corpus and models, its course report, its table of
# errors and the seed ensemble's members' predictions; nothing per level.
JRTE_INPUTS = {"jrte_sentiment.pn", "jrte_sentiment.level1_model", "jrte_sentiment.level2_base_model"}
JRTE_OUTPUTS = {
    "jrte_sentiment.report",
    "jrte_sentiment.level3_errors",
    "jrte_sentiment.seed_ensemble.member_predictions",
}
# Kedro's data layers, in order: the catalog gives every dataset one.
LAYERS = ["raw", "intermediate", "primary", "feature", "model_input", "models", "model_output", "reporting"]
# A markdown report for the markdown preview: alpaca_sft's own run takes minutes, so the fixture saves
# this text through the project's catalog entry (qeu_kedro.datasets.MarkdownDataset) before the build.
MARKDOWN = "# Viz test report\n\n**alpaca_sft.report** is previewed as markdown.\n\n| measure | value |\n| --- | --- |\n| chrF | 1.5 |\n"

pytestmark = [
    pytest.mark.slow,  # a Kedro run, kedro viz build and Chromium
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: run `bash scripts/install_browser.sh` (Debian's chromium)"
    ),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt)")


RENDERED = ".pipeline-metadata__preview-html .html-renderer"  # a markdown preview, rendered


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def _save_markdown_report(project: Path) -> Path:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        catalog = session.load_context().catalog
        catalog.save("alpaca_sft.report", MARKDOWN)
        return Path(catalog.get("alpaca_sft.report")._filepath)


@pytest.fixture(scope="module")
def viz_build(movie_run_project: Path) -> Path:
    """``kedro viz build --include-previews`` on a project whose movie pipelines (base) ran,
    with a markdown report saved for its preview (removed after the build: other tests share the project)."""
    kedro = Path(sys.executable).with_name("kedro")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(movie_run_project)
        report = _save_markdown_report(movie_run_project)
    try:
        result = subprocess.run(
            [str(kedro), "viz", "build", "--include-previews"],
            cwd=movie_run_project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        report.unlink()
    assert result.returncode == 0, result.stderr[-3000:]
    return movie_run_project / "build"


def test_the_build_has_every_layer_in_order_and_a_layer_on_every_dataset(viz_build):
    main = json.loads((viz_build / "api" / "main").read_text())
    assert main["layers"] == LAYERS, "kedro-viz orders the layers (none at all if they formed a cycle)"
    data = [n for n in main["nodes"] if n["type"] == "data"]
    without = [n["name"] for n in data if not n.get("layer")]
    assert not without, f"datasets without a layer: {without}"
    tags = {t["id"] for t in main["tags"]}
    assert {
        "movie_embedding",
        "ridge_analysis",
        "bge_finetune",
        "alpaca_sft",
        "movie_comparison",
        "jrte_sentiment",
    } <= tags
    assert set(main["modular_pipelines"]) >= BOXES


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
        context.route(
            "**/*", lambda route: route.continue_() if route.request.url.startswith(site_url) else route.abort()
        )
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
    # then a toast "You can revisit these hints ..." fades out
    with contextlib.suppress(playwright_api.TimeoutError):
        page.locator("[class^='feature-hints']").first.wait_for(state="detached", timeout=10_000)
    return page


def _open_selected(browser, url: str, selector: str):
    """Open ``url`` (which selects a dataset) and wait for ``selector`` in its metadata panel.

    Once in a full CI run (2026-12-05) the panel of a URL-selected dataset never opened in 60 s, while the
    same commit passed when the test file was rerun; the page is loaded a second time before the test gives up.
    """
    page = _open(browser, url)
    try:
        page.locator(selector).first.wait_for(state="visible", timeout=20_000)
    except playwright_api.TimeoutError:
        page.close()
        page = _open(browser, url)
        page.locator(selector).first.wait_for(state="visible")
    return page


def _zoom_percent(page) -> int:
    """The zoom kedro-viz shows in its toolbar, once the zoom-to-fit transition has settled."""
    scale = page.locator(".pipeline-minimap-toolbar__scale")
    last = None
    for _ in range(20):
        value = int(scale.inner_text().strip().rstrip("%"))
        if value == last:
            return value
        last = value
        page.wait_for_timeout(500)
    return last


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
    # collapsed: each modular pipeline is one box, none of its nodes shows on its own
    assert _flowchart_namespaces(page) >= BOXES, "the default pipeline shows the modular pipelines as boxes"
    tasks = {t.strip() for t in page.locator(".pipeline-node--task .pipeline-node__text").all_text_contents()}
    assert not {"fit_ridge", "fine_tune", "train_lora", "compare_ridge", "embed_movies"} & tasks, tasks
    # the sidebar's tree lists them too
    tree = {t.strip() for t in page.locator(".pipeline-nodelist .node-list-tree-item-row .row-text").all_inner_texts()}
    assert tree >= BOXES
    # the layer bands, named, in Kedro's order (the default view shows those of its visible datasets)
    bands = [t.strip() for t in page.locator(".pipeline-layer-name").all_inner_texts()]
    assert bands and bands == [layer for layer in LAYERS if layer in bands], bands
    # the static build's version file says "up to date": no "Kedro-Viz None is here!" banner
    assert "is here" not in page.locator("body").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(5, 1000)
    zoom = _zoom_percent(page)
    page.screenshot(path=str(SCREENSHOTS / "kedro_viz.png"))
    # readable at first sight: a handful of boxes and their reports, not every file each pipeline writes
    datasets = {t.strip() for t in page.locator(".pipeline-node--data .pipeline-node__text").all_text_contents()}
    assert len(datasets) <= DEFAULT_VIEW_MAX_DATASETS, sorted(datasets)
    assert {d for d in datasets if d.startswith("jrte_sentiment.")} == JRTE_INPUTS | JRTE_OUTPUTS
    assert {"base.ridge_report", "finetuned.ridge_report", "alpaca_sft.report"} <= datasets
    assert {"base.ridge_results", "finetuned.ridge_results"} <= datasets  # the comparison's one input of each
    assert not {"base.ridge_metrics", "base.top_coefficients", "base.ridge_cv_scores"} & datasets  # inside the box
    assert "base.top_coefficients_bar" not in datasets and "alpaca_sft.before_after_plot" not in datasets
    assert zoom >= DEFAULT_VIEW_MIN_ZOOM, f"the default view opens at {zoom} % zoom ({len(datasets)} datasets)"

    listed = _open_pipeline_list(page)
    assert sorted(listed) == sorted(registered), "the pipeline selector offers every registered pipeline"

    # a movie pipeline chosen in the selector: only its nodes, both namespaces
    page.locator(".pipeline-list .dropdown__options .menu-option", has_text="ridge_analysis").first.click()
    page.wait_for_function(
        "() => document.querySelector('.pipeline-list .dropdown__label').innerText.trim() === 'ridge_analysis'"
    )
    # the flowchart re-draws after the label changes: wait until only ridge_analysis's boxes are left
    page.wait_for_function(
        "() => { const boxes = [...document.querySelectorAll('.pipeline-node--modularPipeline .pipeline-node__text')]"
        ".map(t => t.textContent.trim()).sort(); return boxes.join() === 'base,finetuned'; }"
    )
    assert _flowchart_namespaces(page) == NAMESPACES
    data_nodes = {t.strip() for t in page.locator(".pipeline-node--data .pipeline-node__text").all_text_contents()}
    # a closed box shows its inputs and its final outputs: the ridge report (it reads both figures: inside)
    assert {"ratings", "users", "base.ridge_report", "finetuned.ridge_report"} <= data_nodes
    assert not {"base.top_coefficients_bar", "base.top_features_scatter"} & data_nodes
    page.mouse.move(5, 1000)  # no hover highlight in the picture
    page.wait_for_timeout(1_000)  # the zoom-to-fit transition
    page.screenshot(path=str(SCREENSHOTS / "kedro_viz_ridge_analysis.png"))

    # one box opened: its own fit_ridge, the other namespace's still inside its closed box
    page.locator(".pipeline-node--modularPipeline", has_text="base").first.click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.pipeline-node--task .pipeline-node__text')]"
        ".some(t => t.textContent.trim() === 'fit_ridge')"
    )
    tasks = [t.strip() for t in page.locator(".pipeline-node--task .pipeline-node__text").all_text_contents()]
    assert tasks.count("fit_ridge") == 1
    page.mouse.move(5, 1000)
    page.wait_for_timeout(1_000)
    page.screenshot(path=str(SCREENSHOTS / "kedro_viz_ridge_analysis_base.png"))
    page.close()


def test_dataset_previews_show_a_rounded_table_a_figure_and_markdown_reports(browser, site_url, movie_run_project):
    # a table: the first rows of the CSV the run wrote, rounded, only the columns the panel shows whole
    page = _open_selected(
        browser, site_url + "/?pid=ridge_analysis&sn=base.top_coefficients", ".pipeline-metadata .preview-table"
    )
    table = page.locator(".pipeline-metadata .preview-table")
    headers = [t.strip() for t in table.locator(".preview-table__header").all_inner_texts()]
    written = pd.read_csv(movie_run_project / "data/08_reporting/base/top_coefficients.csv")
    assert headers[-3:] == ["rank", "feature", "coefficient"]
    rows = table.locator(".preview-table__row")
    assert rows.count() == 5  # the preview's default length
    first = rows.first.inner_text()
    assert written["feature"].iloc[0] in first
    assert f"{written['coefficient'].iloc[0]:.4f}".rstrip("0") in first
    assert not re.search(r"\d\.\d{5,}", table.inner_text()), "floats are rounded to 4 decimals"
    # the last column is whole inside the panel
    panel = page.locator(".pipeline-metadata").bounding_box()
    last = table.locator(".preview-table__header").last.bounding_box()
    assert last["x"] + last["width"] <= panel["x"] + panel["width"] + 1, (last, panel)
    page.mouse.move(5, 1000)
    page.screenshot(path=str(SCREENSHOTS / "kedro_viz_preview_table.png"))
    page.close()

    # a figure: the PNG the run wrote, inline in the metadata panel
    page = _open_selected(
        browser, site_url + "/?pid=ridge_analysis&sn=base.top_coefficients_bar", ".pipeline-metadata__plot-image"
    )
    image = page.locator(".pipeline-metadata__plot-image")
    source = image.first.get_attribute("src") or ""
    assert source.startswith("data:image/png;base64,")
    width = page.evaluate("el => el.naturalWidth", image.first.element_handle())
    assert width > 200, "the preview image decoded to a real picture"
    page.mouse.move(5, 1000)
    page.screenshot(path=str(SCREENSHOTS / "kedro_viz_preview.png"))
    page.close()

    # a markdown report, rendered: heading, bold, table; names with underscores kept whole
    page = _open_selected(browser, site_url + "/?pid=alpaca_sft&sn=alpaca_sft.report", RENDERED)
    rendered = page.locator(RENDERED)
    assert rendered.locator("h1").inner_text().strip() == "Viz test report"
    assert rendered.locator("strong").first.inner_text().strip() == "alpaca_sft.report"
    assert [c.strip() for c in rendered.locator("td").all_inner_texts()] == ["chrF", "1.5"]
    page.mouse.move(5, 1000)
    page.screenshot(path=str(SCREENSHOTS / "kedro_viz_preview_markdown.png"))
    page.close()

    # a report the run wrote: rendered, with the figures it links shown inline (the site cannot reach the files)
    page = _open_selected(browser, site_url + "/?pid=ridge_analysis&sn=base.ridge_report", RENDERED)
    rendered = page.locator(RENDERED)
    assert rendered.locator("h1").inner_text().strip().startswith("ridge_analysis / base:")
    images = rendered.locator("img")
    assert images.count() == 2
    for i in range(2):
        assert (images.nth(i).get_attribute("src") or "").startswith("data:image/png;base64,")
        assert page.evaluate("el => el.naturalWidth", images.nth(i).element_handle()) > 200
    # expanded to the whole window, scrolled to its last figure: what the screenshot shows
    page.get_by_text("Expand preview").click()
    shown = page.locator("img[src^='data:image/png']")
    page.wait_for_function("() => document.querySelectorAll(\"img[src^='data:image/png']\").length >= 4")
    shown.last.scroll_into_view_if_needed()
    page.mouse.move(5, 1000)
    page.screenshot(path=str(SCREENSHOTS / "kedro_viz_preview_report.png"))
    page.close()
