"""How a ``kedro run`` is laid out in MLflow: pure functions, used by :class:`qeu_kedro.hooks.MlflowOutputsHook`.

One parent run per ``kedro run`` (kedro-mlflow opens it) and one nested run per pipeline ×
namespace, named :attr:`RunGroup.name`: ``ridge_analysis/base``, ``ridge_analysis/finetuned``,
``bge_finetune``, ``jrte_sentiment/level2`` ... A node belongs to the registered pipeline that
holds it (:func:`pipeline_for`) and to the first part of its namespace that is not that
pipeline's name (:func:`group_for`), so namespaced modular pipelines need no code here.

Inside a nested run a report's numbers keep the names the report gives them, without the
namespace, so ``r2_test`` is ``r2_test`` in every namespace and MLflow overlays them
(:func:`metric_prefix`, :func:`split_report`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

# MLflow's allowed key characters; anything else becomes "_".
_KEY_UNSAFE = re.compile(r"[^\w\-. /:]")
# MLflow's limit for a metric or param key.
_MAX_KEY = 250
# Longer strings (sentences, lists of names) stay in the report's JSON artifact, not in a param.
_MAX_PARAM_TEXT = 250
# Outputs whose name contains one of these are reports: their numbers go to MLflow.
REPORT_WORDS = ("metrics", "summary")
# Keys that give the x axis of a history: the first one every entry has wins ("epoch" only when whole).
STEP_KEYS = ("step", "global_step", "epoch")


@dataclass(frozen=True)
class RunGroup:
    """A pipeline × namespace: one nested MLflow run."""

    pipeline: str
    namespace: str = ""  # the node namespace that defines the group ("" when the nodes have none)

    @property
    def name(self) -> str:
        """``<pipeline>``, or ``<pipeline>/<rest>`` where rest is the namespace without a leading pipeline name."""
        parts = self.namespace.split(".") if self.namespace else []
        if parts and parts[0] == self.pipeline:
            parts = parts[1:]
        return "/".join([self.pipeline, *parts]) if parts else self.pipeline


def pipeline_for(namespace: str | None, candidates: Mapping[str, int]) -> str | None:
    """The registered pipeline a node belongs to, among ``candidates`` (pipeline name → number of nodes).

    The pipeline named like the node's top-level namespace wins; otherwise the smallest pipeline
    that holds the node (the most specific one), then the first name in alphabetical order.
    """
    names = [n for n in candidates if n != "__default__"]
    if not names:
        return None
    top = (namespace or "").split(".")[0]
    if top in names:
        return top
    return min(names, key=lambda n: (candidates[n], n))


def group_for(namespace: str | None, pipeline: str) -> RunGroup:
    """The run group of a node: its pipeline and the first part of its namespace that is not the pipeline's name.

    ``base`` → ``ridge_analysis/base``; ``base.inner`` → ``ridge_analysis/base``;
    ``bge_finetune`` → ``bge_finetune``; ``jrte_sentiment.level2`` (or deeper) → ``jrte_sentiment/level2``.
    """
    parts = namespace.split(".") if namespace else []
    keep = 2 if parts and parts[0] == pipeline else 1
    return RunGroup(pipeline, ".".join(parts[:keep]))


def local_name(dataset: str, group: RunGroup) -> str:
    """A dataset's name inside its group's run: without the group's namespace (``base.ridge_metrics`` → ``ridge_metrics``)."""
    prefix = f"{group.namespace}." if group.namespace else ""
    return dataset[len(prefix) :] if prefix and dataset.startswith(prefix) else dataset


def is_report(dataset: str) -> bool:
    """Reports are the outputs named ``*metrics*`` or ``*summary*`` (the last part of the name)."""
    leaf = dataset.rsplit(".", 1)[-1]
    return any(word in leaf for word in REPORT_WORDS)


def main_report(reports: Iterable[str], group: RunGroup) -> str | None:
    """The report of a group whose numbers are logged without its dataset name (``r2_test``, not ``ridge_metrics.r2_test``).

    The one named ``metrics`` / ``summary`` / ``<pipeline>_metrics`` / ``<namespace>_metrics``; else the
    group's only report; else none (every report keeps its name as a prefix, so keys stay unique).
    """
    local = {local_name(r, group): r for r in reports}
    last = group.name.rsplit("/", 1)[-1]
    preferred = {f"{stem}{word}" for word in REPORT_WORDS for stem in ("", f"{group.pipeline}_", f"{last}_")}
    chosen = [full for name, full in local.items() if name in preferred]
    if len(chosen) == 1:
        return chosen[0]
    if len(local) == 1:
        return next(iter(local.values()))
    return None


def metric_prefix(dataset: str, group: RunGroup, main: str | None) -> str:
    """The key prefix of a report's numbers in its group's run ("" for the main report)."""
    return "" if dataset == main else local_name(dataset, group)


def metric_key(name: str) -> str:
    """An MLflow-safe key (``ndcg@10`` → ``ndcg_10``)."""
    return _KEY_UNSAFE.sub("_", name)[:_MAX_KEY]


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _scalar(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalar
        return value.item()
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def config_values(parameters: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Every scalar parameter's last key → its values (``{"alpha": [5.0], "seed": [42], ...}``)."""
    found: dict[str, list[Any]] = {}

    def walk(value: Any, key: str | None) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, str(k))
        elif key is not None and not key.isdigit() and (_is_number(value) or isinstance(value, str | bool)):
            found.setdefault(key, []).append(value)

    walk(parameters, None)
    return found


def is_config(leaf: str, value: Any, config: Mapping[str, list[Any]]) -> bool:
    """A report number that repeats a parameter (``alpha`` of ``params:ridge_analysis``; ``"auto"`` chose it)."""
    values = config.get(leaf) or []
    return any(v == value or v == "auto" for v in values if not isinstance(v, bool))


def is_count(leaf: str, value: float) -> bool:
    """A count stored as a float: scikit-learn's ``support``. (Whole numbers of type int are params anyway.)

    Other floats stay metrics even when whole: a mean such as ``n_chars`` is 8.0 in one run and
    11.3 in the next, and a key must not move between params and metrics from run to run.
    """
    return leaf == "support" and float(value).is_integer()


def history_steps(entries: Sequence[Mapping[str, Any]]) -> tuple[str | None, list[int]] | None:
    """The x axis of a history (a list of dicts): its ``step``, ``global_step`` or whole ``epoch``; None if it is no history."""
    if not entries or not all(isinstance(e, Mapping) for e in entries):
        return None
    for key in STEP_KEYS:
        values = [_scalar(e.get(key)) for e in entries]
        if all(_is_number(v) and float(v).is_integer() for v in values):
            return key, [int(v) for v in values]
    if all("epoch" in e for e in entries):  # fractional epochs: the entry's position
        return None, list(range(1, len(entries) + 1))
    return None


def _matrix(value: Sequence[Any]) -> bool:
    return bool(value) and all(
        isinstance(row, list | tuple) and row and all(_is_number(_scalar(x)) for x in row) for row in value
    )


def matrix_csv(matrix: Sequence[Sequence[Any]], labels: Sequence[Any] | None = None) -> str:
    """A confusion matrix as CSV, rows = true, columns = predicted, with the labels when they fit."""
    size = len(matrix)
    names = [str(x) for x in labels] if labels is not None and len(labels) == size else [str(i) for i in range(size)]
    lines = ["true \\ predicted," + ",".join(names)]
    lines += [f"{name}," + ",".join(str(_scalar(x)) for x in row) for name, row in zip(names, matrix, strict=False)]
    return "\n".join(lines) + "\n"


@dataclass
class Report:
    """A report split into what MLflow shows: metrics, params, step series and tables."""

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)


def _copied(value: Mapping[str, Any], sources: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every item of ``value`` is in one of the ``sources`` (a report copying an input report)."""
    return bool(value) and any(all(k in s and _equal(s[k], v) for k, v in value.items()) for s in sources)


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and the like: not a plain copy
        return False


def sub_mappings(value: Any, depth: int = 3) -> Iterator[Mapping[str, Any]]:
    """``value`` and the dicts inside it, ``depth`` levels down (the places a report may have been copied from)."""
    if isinstance(value, Mapping):
        yield value
        if depth > 0:
            for item in value.values():
                yield from sub_mappings(item, depth - 1)


def _repeats(key: str, value: Any, logged: Mapping[str, Any]) -> bool:
    """Whether ``value`` is already logged under a name made of some of this name's parts.

    ``comparison.64.ndcg_10.before`` repeats ``before.64.ndcg_10``; ``paired.chrf.before`` repeats
    ``chrf.before``: the same number reached by another path through the report.
    """
    parts = set(key.split("."))
    for other, old in logged.items():
        if other == key or not set(other.split(".")) <= parts:
            continue
        if isinstance(value, str) and old == value:
            return True
        if _is_number(value) and _is_number(old) and _same_number(old, value):
            return True
    return False


def _same_number(a: float, b: float) -> bool:
    """Equal, or one is the other rounded to 4 decimals (reports round their means for reading: a copy at
    full precision is the same number, whether or not its fifth decimal happens to be 0)."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or round(a, 4) == b or round(b, 4) == a


def split_report(
    value: Mapping[str, Any],
    prefix: str,
    config: Mapping[str, list[Any]] | None = None,
    copied_from: Sequence[Mapping[str, Any]] = (),
    logged: Mapping[str, float] | None = None,
) -> Report:
    """Sort a report's content into metrics, params, step series and tables, under ``prefix``.

    - a number that repeats a parameter (``alpha``), an int (a count: ``n_test``) or a flag → param;
      short strings and short lists of scalars (``verdict``, ``dims``) → params; other numbers → metrics;
    - a list of dicts with ``step`` / ``epoch`` (a training history) → one step series per other key;
    - a list of lists of numbers (a confusion matrix) → a CSV table, labelled by a sibling ``labels`` list;
    - a dict met twice (the same object under two keys) or copied from one of ``copied_from`` → skipped;
      a number already in ``logged`` or in this report under a name made of some of its name's parts
      (``comparison.64.ndcg_10.before`` after ``before.64.ndcg_10``) → skipped; the same for params.

    Non-finite numbers, ``None``, long texts and other lists stay only in the report's JSON artifact.
    """
    config = config or {}
    out = Report()
    known = dict(logged or {})
    known_params: dict[str, str] = {}

    def param(key: str, text: str) -> None:
        key = metric_key(key)
        if not _repeats(key, text, known_params):
            out.params[key] = known_params[key] = text

    seen: set[int] = set()
    sources = [m for source in copied_from for m in sub_mappings(source)]

    def walk(item: Any, key: str, siblings: Mapping[str, Any] | None) -> None:
        item = _scalar(item)
        leaf = key.rsplit(".", 1)[-1]
        if item is None:
            return
        if isinstance(item, bool | int):
            param(key, str(item))
        elif isinstance(item, float):
            if not math.isfinite(item):
                return
            if is_config(leaf, item, config) or is_count(leaf, item):
                param(key, repr(item))
            elif not _repeats(metric_key(key), item, known):
                out.metrics[metric_key(key)] = known[metric_key(key)] = item
        elif isinstance(item, str):
            if len(item) <= _MAX_PARAM_TEXT:
                param(key, item)
        elif isinstance(item, Mapping):
            if id(item) in seen or (key != prefix and _copied(item, sources)):
                return
            seen.add(id(item))
            for k, v in item.items():
                walk(v, _join(key, k), item)
        elif isinstance(item, list | tuple):
            walk_list(list(item), key, leaf, siblings)

    def walk_list(items: list[Any], key: str, leaf: str, siblings: Mapping[str, Any] | None) -> None:
        steps = history_steps(items)
        if steps is not None:
            step_key, xs = steps
            for x, entry in zip(xs, items, strict=True):
                for k, v in entry.items():
                    v = _scalar(v)
                    if k in STEP_KEYS or not _is_number(v) or not math.isfinite(v):
                        continue
                    out.series.setdefault(metric_key(_join(key, k)), []).append((x, float(v)))
            return
        if _matrix(items):
            labels = siblings.get("labels") if isinstance(siblings, Mapping) else None
            out.tables[metric_key(key)] = matrix_csv(items, labels if isinstance(labels, list | tuple) else None)
            return
        scalars = [_scalar(v) for v in items]
        if all(_is_number(v) or isinstance(v, str) for v in scalars):
            text = json.dumps(scalars, ensure_ascii=False)
            if items and len(text) <= _MAX_PARAM_TEXT:
                param(key, text)

    if isinstance(value, Mapping):
        seen.add(id(value))
        for k, v in value.items():
            walk(v, _join(prefix, k), value)
    return out


def flatten_params(value: Any, prefix: str) -> dict[str, str]:
    """``params:bge_finetune`` → ``{"bge_finetune.training.learning_rate": "2e-05", ...}`` (as kedro-mlflow logs them)."""
    if isinstance(value, Mapping):
        flat: dict[str, str] = {}
        for k, v in value.items():
            flat.update(flatten_params(v, _join(prefix, k)))
        return flat
    return {metric_key(prefix): str(value)}


def data_label(paths: Iterable[str | PurePath], project: Path, shared: Path | None = None) -> str | None:
    """Which data a run read, from its raw inputs' paths: ``sample`` (the project's ``data/01_raw``) or the real sets.

    A path under ``shared`` (``../shared/data``) is named by its first folder there
    (``movielens-100k``, ``tmdb5000``); any other outside path by its folder.
    """
    labels: set[str] = set()
    raw = (project / "data" / "01_raw").resolve()
    for path in paths:
        text = str(path)
        if "://" in text and not text.startswith("file://"):
            labels.add(text.split("://", 1)[0] + "://" + text.split("://", 1)[1].split("/", 1)[0])
            continue
        p = Path(text.removeprefix("file://"))
        p = (project / p).resolve() if not p.is_absolute() else p.resolve()
        if p == raw or raw in p.parents:
            labels.add("sample")
        elif shared is not None and shared.resolve() in p.parents:
            labels.add(p.relative_to(shared.resolve()).parts[0])
        elif project.resolve() not in p.parents:
            labels.add(p.parent.name)
    return "+".join(sorted(labels)) or None


def runner_name(text: str | None) -> str:
    """``<kedro.runner.sequential_runner.SequentialRunner object at 0x…>`` (or ``None``: the default) → ``SequentialRunner``."""
    if not text or text == "None":
        return "SequentialRunner"
    found = re.search(r"([A-Za-z_]\w*)(?: object at 0x[0-9a-fA-F]+)?>?$", text.strip())
    return found.group(1) if found else text[:100]
