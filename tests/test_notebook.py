"""The before/after notebook, executed after sample runs of the pipelines it reads, so that it cannot rot.

The runs are bounded: ``bge_finetune`` trains one step on a few pairs (its sample run trains two
epochs); the movie pipelines and ``movie_comparison`` run as shipped. ``jrte_sentiment`` and ``alpaca_sft`` are not run
here (minutes of training each): the notebook must then say, for each of their datasets, what to run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import REPO, SHARED_DATA, run_kedro

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (requirements.txt)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (requirements.txt)")
pytestmark = pytest.mark.slow  # Kedro runs, then a kernel executes the notebook

NOTEBOOK = REPO / "notebooks" / "before_after.ipynb"
# One training step on a few pairs: the notebook needs the outputs, not a good model. Nested, as
# Kedro deep-merges runtime parameters (dotted keys work only on the command line's --params).
BOUNDED_BGE = {
    "bge_finetune": {
        "trainer": {"max_steps": 1, "per_device_train_batch_size": 16},
        "subset": {"max_train_pairs": 16, "max_test_queries": 16, "max_corpus": 32},
        "matryoshka_dims": [384, 64],
        "loss": {"matryoshka_weights": [64, 1]},  # one weight per dimension
    }
}
# Figures the runs above make; the notebook must show each one.
FIGURES = [
    "base.top_coefficients_bar",
    "finetuned.top_coefficients_bar",
    "movie_comparison.figure",
    "bge_finetune.ndcg_by_dim",
]
# Datasets of the pipelines not run here; the notebook must name each one as missing.
NOT_RUN = {
    "jrte_sentiment.level1.metrics",
    "jrte_sentiment.level2.metrics",
    "jrte_sentiment.baseline.metrics",
    "alpaca_sft.metrics",
    "alpaca_sft.before_after_plot",
}


def _outputs(nb) -> list[dict]:
    return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]


def _text(output) -> str:
    if output.output_type == "stream":
        return output.text
    data = output.get("data", {})
    return data.get("text/markdown") or data.get("text/plain") or ""


@pytest.fixture(scope="module")
def executed(movie_run_project: Path):
    """The shared sample-run project (movie pipelines, ``base``) after the runs the notebook reads,
    with the notebook executed in its notebooks/ folder."""
    project = movie_run_project
    shutil.copytree(REPO / "notebooks", project / "notebooks", dirs_exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("QEU_SHARED_DATA", str(SHARED_DATA))
        mp.delenv("KEDRO_ENV", raising=False)
        # bge_finetune first: the `finetuned` namespace may read the model it trains
        run_kedro(project, params=BOUNDED_BGE, pipeline_name="bge_finetune")
        # both namespaces: movie_comparison needs them on the same CV folds, and another module (test_mlflow)
        # may have left a `base` run with other CV parameters in this shared project
        run_kedro(project, pipeline_names=["movie_embedding", "ridge_analysis"], namespaces=["base", "finetuned"])
        # twice, for the notebook's "one run against the last"
        run_kedro(project, pipeline_name="movie_comparison")
        run_kedro(project, pipeline_name="movie_comparison")

        nb = nbformat.read(project / "notebooks" / NOTEBOOK.name, as_version=4)
        # IPC: the kernel talks to nbclient over local sockets, not TCP ports
        client = nbclient.NotebookClient(
            nb,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(project / "notebooks")}},
        )
        client.km = client.create_kernel_manager()
        client.km.transport = "ipc"
        # a short path: a Unix socket's name is limited to about 100 characters
        client.km.ip = str(Path(tempfile.mkdtemp(prefix="qeu-kernel-")) / "k")
        try:
            client.execute()
        finally:
            nbformat.write(nb, project / "notebooks" / "before_after.executed.ipynb")
    return nb, project


def test_notebook_runs_without_error_from_the_project_catalog(executed):
    nb, project = executed
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(f"project: {project}" in _text(o) for o in outputs), "it found the project from notebooks/"
    assert "%load_ext kedro.ipython" in nb.cells[1].source, "the project is loaded the Kedro way"


def test_notebook_prints_no_warning(executed):
    nb, _ = executed
    stderr = [o.text for o in _outputs(nb) if o.output_type == "stream" and o.name == "stderr"]
    assert not [t for t in stderr if "warning" in t.lower()], stderr


def test_notebook_states_each_conclusion_from_the_data(executed):
    nb, project = executed
    text = "\n".join(_text(o) for o in _outputs(nb))
    summary = json.loads((project / "data/08_reporting/comparison/summary.json").read_text())
    cv = summary["cv_r2_test"]
    words = {"better": "a gain", "worse": "a loss", "no evidence": "no evidence of a gain"}
    assert (
        f"**Conclusion.** fine-tuning changed test R² by {cv['difference']:+.4f} "
        f"(95 % interval {cv['ci_low']:+.4f} to {cv['ci_high']:+.4f}, n = {cv['n']} CV folds): {words[cv['verdict']]}"
    ) in text
    bge = json.loads((project / "data/08_reporting/bge_finetune/metrics.json").read_text())
    for dim in bge["dims"]:
        c = bge["comparison"][str(dim)]["ndcg@10"]
        assert (
            f"fine-tuning changed NDCG@10 at {dim} dimensions by {c['difference']:+.4f} "
            f"(95 % interval {c['ci_low']:+.4f} to {c['ci_high']:+.4f}"
        ) in text
        assert words[c["verdict"]] in text
    # the run-against-run section concludes too (movie_comparison ran twice)
    assert "metrics changed between the last two runs of the same name" in text


def test_notebook_tables_are_compact(executed):
    nb, _ = executed
    for output in _outputs(nb):
        html = output.get("data", {}).get("text/html", "")
        if "<table" in html:
            first_header_row = html.split("<thead>")[1].split("</tr>")[0]
            assert first_header_row.count("<th") <= 12, "a table of at most a dozen columns"
            assert html.count("<tr") <= 25, "a table of at most two dozen rows"


def test_notebook_shows_every_figure_the_runs_wrote(executed):
    nb, _ = executed
    outputs = _outputs(nb)
    for name in FIGURES:
        captions = [i for i, o in enumerate(outputs) if f"*Figure `{name}`*" in _text(o)]
        assert captions, f"{name} was not shown"
        following = outputs[captions[0] + 1]
        assert "image/png" in following.get("data", {}), f"{name}: no picture right after its caption"
    # its own chart too: the per-fold CV differences of test R² with their interval
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == len(FIGURES) + 1


def test_notebook_compares_base_with_finetuned_and_before_with_after(executed):
    nb, project = executed
    text = "\n".join(_text(o) for o in _outputs(nb))
    for ns in ("base", "finetuned"):
        r2 = json.loads((project / f"data/08_reporting/{ns}/ridge_metrics.json").read_text())["r2_test"]
        assert f"{r2:.4f}" in text, f"the {ns} test R² of the run is in the table"
    bge = json.loads((project / "data/08_reporting/bge_finetune/metrics.json").read_text())
    assert bge["dims"] == [384, 64] and bge["data"]["n_test_queries"] == 16, "the bounded run"
    for dim in bge["dims"]:
        assert f"{bge['after'][str(dim)]['ndcg@10']:.4f}" in text, f"NDCG@10 after fine-tuning at {dim} dims is shown"
    assert "**`movie_comparison`**: run" in text, "the last movie_comparison run is compared with the one before"


def test_notebook_names_what_to_run_for_each_missing_dataset(executed):
    nb, _ = executed
    text = "\n".join(_text(o) for o in _outputs(nb))
    for name in NOT_RUN:
        assert f"**`{name}` is missing**: run `kedro run --pipeline" in text
    for name in FIGURES + ["base.ridge_metrics", "finetuned.ridge_metrics", "bge_finetune.metrics"]:
        assert f"**`{name}` is missing**" not in text


def test_the_alpaca_conclusion_words_each_measure_in_its_own_direction():
    """The notebook's alpaca_sft cell on a summary the pipeline's own code made (not run above: minutes of
    training): a lower-is-better measure that fell is a gain, a measure with no better direction is
    "higher" or "lower", never a gain."""
    from qeu_kedro.pipelines.alpaca_sft.nodes import compare_before_after
    from tests.pipelines.alpaca_sft.test_report import MEASURES, TRAIN, answers

    _, summary = compare_before_after(answers(24, False), answers(24, True), TRAIN, MEASURES)
    code = [cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code"]
    said: list[str] = []
    namespace: dict = {"context": SimpleNamespace(env=None)}  # the Kedro context the notebook's first cell loads
    exec(next(s for s in code if "def change(" in s), namespace)  # the notebook's helpers
    namespace.update(
        load=lambda name, command: summary if name == "alpaca_sft.metrics" else None,
        show_figure=lambda *args: None,
        display=lambda *args: None,
        conclude=lambda *lines: said.append(" ".join(lines)),
    )
    exec(next(s for s in code if 'load("alpaca_sft.metrics"' in s), namespace)
    (text,) = said
    assert (
        "changed answer_loss by -0.5000 (95 % interval -0.5000 to -0.5000, n = 24 prompts): "
        "a gain (the whole interval is below 0, and lower is better)" in text
    )
    assert "changed n_chars by +10.0000" in text and "higher (the whole interval is above 0; neither" in text
    assert "changed chrF against the reference by +0.0000" in text and "no evidence of a gain" in text


@pytest.mark.parametrize(("env", "option"), [(None, ""), ("local", ""), ("jrte", " --env jrte")])
def test_a_missing_dataset_s_command_names_the_notebook_s_environment(env, option):
    """Opened with KEDRO_ENV=jrte, the notebook told a reader to run `kedro run --pipelines jrte_sentiment`,
    which writes the sample's outputs, not the jrte environment's the notebook reads."""
    code = [cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code"]
    namespace: dict = {"context": SimpleNamespace(env=env), "catalog": {}}
    exec(next(s for s in code if "def _missing(" in s), namespace)  # the notebook's helpers
    shown: list[str] = []
    namespace["display"] = lambda item: shown.append(item.data)
    assert namespace["load"]("jrte_sentiment.level1.metrics", "kedro run --pipelines jrte_sentiment") is None
    assert shown == [
        f"**`jrte_sentiment.level1.metrics` is missing**: run `kedro run --pipelines jrte_sentiment{option}` first."
    ]
