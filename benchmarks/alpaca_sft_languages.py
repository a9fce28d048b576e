"""alpaca_sft on the real Japanese data, both ways of the instruction language, recorded in
benchmarks/RESULTS_alpaca.md (numbers only: the generations quote the licensed data).

Run from the repository root, with the real data in ../shared/data (or QEU_SHARED_DATA):

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/alpaca_sft_languages.py            # both runs, then the record
    python benchmarks/alpaca_sft_languages.py --record-only --dir data/benchmarks/...  # record runs made before

Each run is ``kedro run --env ja_instruct --pipelines alpaca_sft`` (conf/ja_instruct as committed),
the second with ``--params alpaca_sft.prompt.instruction_language=en``; its outputs are copied to
``<dir>/<native|en>/`` with a ``meta.txt`` (start/end time, load average, commit, wall time).
Both runs hold out the same prompts (the split does not depend on the prompt's wording), so the
two instruction languages are compared prompt by prompt: the paired bootstrap of the
difference in chrF of the answers, after training and before it (the base model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "data" / "08_reporting" / "ja_instruct" / "alpaca_sft"
ANSWERS = REPO / "data" / "07_model_output" / "ja_instruct" / "alpaca_sft"
RESULTS = REPO / "benchmarks" / "RESULTS_alpaca.md"
RUNS = {"native": [], "en": ["--params", "alpaca_sft.prompt.instruction_language=en"]}


def _run(label: str, extra: list[str], folder: Path) -> None:
    command = ["kedro", "run", "--env", "ja_instruct", "--pipelines", "alpaca_sft", *extra]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    folder.mkdir(parents=True, exist_ok=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta = [f"start {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} load {load} commit {commit}"]
    print("[bench]", shlex.join(command), flush=True)
    outputs = [
        *(OUT / n for n in ("metrics.json", "train_metrics.json", "before_after.csv", "report.md", "before_after.png")),
        ANSWERS / "answers_before.csv",
    ]
    before = {path: path.stat().st_mtime_ns if path.exists() else None for path in outputs}
    start = time.time()
    with open(folder / "log.txt", "w") as log:
        rc = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT).returncode
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta.append(
        f"end {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} load {load} rc {rc} wall_s {int(time.time() - start)}"
    )
    meta.append(f"prefix {_prefix()}")
    (folder / "meta.txt").write_text("\n".join(meta) + "\n")
    # Only what this run wrote: a run that fails part-way leaves the last run's files in OUT, which
    # must not be recorded as this run's (a run stopped after the base model's answers keeps those).
    for path in outputs:
        target = folder / path.name
        target.unlink(missing_ok=True)
        if path.exists() and path.stat().st_mtime_ns != before[path]:
            shutil.copy(path, target)
    if rc:
        sys.exit(f"{label} run failed (rc {rc}): see {folder / 'log.txt'}")


def _prefix() -> str:
    """How this process runs the commands: the thread cap and niceness it passes on, as a shell prefix."""
    parts = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
    if os.nice(0):
        parts.append(f"nice -n {os.nice(0)}")
    return " ".join(parts)


def _meta(folder: Path) -> dict[str, str]:
    lines = (folder / "meta.txt").read_text().split("\n")
    start, end = lines[0].split(), lines[1].split()
    return {
        "prefix": _meta_prefix(folder),
        "start": start[1],
        "load_start": start[3],
        "commit": start[-1],
        "end": end[1],
        "load_end": end[3],
        "wall_s": end[-1],
    }


def _meta_prefix(folder: Path) -> str:
    lines = (folder / "meta.txt").read_text().split("\n")
    prefix = lines[2].removeprefix("prefix").strip() if len(lines) > 2 and lines[2].startswith("prefix") else ""
    return f"{prefix} " if prefix else ""


ANSWER_LOSS = "The reference answers' loss (mean per answer)"


def _run_section(label: str, folder: Path) -> list[str]:
    from qeu_kedro.pipelines.alpaca_sft.evaluation import issue_targets
    from qeu_kedro.pipelines.alpaca_sft.nodes import describe_comparison

    m = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    t = json.loads((folder / "train_metrics.json").read_text(encoding="utf-8"))
    meta = _meta(folder)
    extra = "" if label == "native" else " --params alpaca_sft.prompt.instruction_language=en"
    n = 4
    after, before, ref = m["overall"]["after"], m["overall"]["before"], m[f"reference_copied_{n}gram_share"]
    curve = ", ".join(f"{p['step']}: {p['validation_chrf']:.2f}" for p in t["validation_chrf_curve"])
    # read on the stored intervals (a metrics.json written before 2026-12-08 holds booleans read on the means)
    targets = issue_targets(m["paired"], m.get(f"copied_{n}gram_share_after_vs_reference_plus_0.10"), n)
    lines = [
        f"### instruction language `{label}`",
        "",
        f"- Command: `{meta['prefix']}kedro run --env ja_instruct --pipelines alpaca_sft{extra}` "
        f"(commit {meta['commit']}), {meta['start']} to {meta['end']}: {int(meta['wall_s']) / 60:.1f} min of wall time; "
        f"load average {meta['load_start']} at start, {meta['load_end']} at end (the machine was shared with other jobs)",
        f"- {t['n_train']} training examples, {t['global_step']} LoRA steps ({t['seconds_per_step']} s/step, "
        f"{t['trainable_parameters']} trainable parameters = {100 * t['trainable_share']:.2f} %); validation chrF by step "
        f"({t['n_validation']} prompts carved from training): {curve}; adapter of step {t['chosen_step']} chosen",
        f"- {describe_comparison(m['paired']['answer_loss'], ANSWER_LOSS, False)}."
        if "answer_loss" in m["paired"]
        else "- The reference answers' loss: not measured (a run made before 2026-12-07).",
        "",
        "| measure (mean over the held-out prompts) | before | after |",
        "| --- | --- | --- |",
        *[f"| {c} | {before[c]} | {after[c]} |" for c in before],
        f"| references' own copied_{n}gram_share | {ref} | |",
        "",
        f"- {describe_comparison(m['paired']['chrf'], 'chrF against the reference', True)}.",
        f"- {describe_comparison(m['paired'][f'copied_{n}gram_share'], f'Copied {n}-gram share', False)}.",
        f"- {describe_comparison(m['paired']['ended_by_itself'], 'Share of answers ending by themselves', True)}.",
        "- Targets (each read on its paired 95 % interval: met when the whole interval is on the target's side "
        "of 0, not met when it is all on the other side, otherwise not shown either way): chrF after > before: "
        f"**{targets['chrf_better']}**; copied share after ({after[f'copied_{n}gram_share']}) <= references' own "
        f"({ref}) + 0.10, paired by prompt (its interval is in the run's report.md): "
        f"**{targets[f'copied_{n}gram_share_within_reference_plus_0.10']}**; answers ending by themselves not fewer "
        f"after: **{targets['ended_by_itself_not_lower']}**.",
        "",
    ]
    return lines


def _language_section(folder: Path) -> list[str]:
    """en vs native, prompt by prompt; a run stopped before training (``answers_before.csv`` only,
    no ``before_after.csv``) still gives the base-model comparison."""
    from qeu_kedro.stats import paired_bootstrap

    native = pd.read_csv(folder / "native" / "before_after.csv").set_index("NO")
    if (folder / "en" / "before_after.csv").exists():
        english = pd.read_csv(folder / "en" / "before_after.csv").set_index("NO")
        stages = (("before", "base model (before training)"), ("after", "after LoRA SFT"))
    else:
        english = pd.read_csv(folder / "en" / "answers_before.csv").set_index("NO").add_suffix("_before")
        stages = (("before", "base model (before training)"),)
    if sorted(native.index) != sorted(english.index):
        raise SystemExit("the two runs held out different prompts: they cannot be compared pairwise")
    english = english.loc[native.index]
    lines = [
        "### English instruction (`en`) vs the data's own Japanese instruction (`native`), prompt by prompt",
        "",
        "| chrF of the answers | native | en | en - native (95 % paired bootstrap interval) | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    verdicts = {}
    for when, what in stages:
        c = paired_bootstrap(native[f"chrf_{when}"], english[f"chrf_{when}"], n_resamples=10_000, seed=0)
        verdicts[when] = c.verdict
        lines.append(
            f"| {what} | {c.before:.2f} | {c.after:.2f} | {c.difference:+.2f} ({c.ci_low:+.2f} to {c.ci_high:+.2f}), "
            f"n = {c.n} | {c.verdict} for `en` |"
        )
    said = [f"with the base model, {_sentence(verdicts['before'])}"]
    if "after" in verdicts:
        said.insert(0, f"after training, {_sentence(verdicts['after'])}")
    else:
        said.append("after training: not measured (the `en` run was stopped before its training ended)")
    lines += ["", f"The data support: {'; '.join(said)}.", ""]
    return lines


def _sentence(verdict: str) -> str:
    return {
        "better": "the English instruction scores higher chrF (the interval lies above 0)",
        "worse": "the Japanese instruction scores higher chrF (the interval lies below 0)",
        "no evidence": "no evidence that either instruction language answers better (the interval contains 0)",
    }[verdict]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=REPO / "data" / "benchmarks" / "alpaca_sft")
    parser.add_argument("--record-only", action="store_true", help="record runs already in --dir")
    parser.add_argument("--no-write", action="store_true", help="print instead of appending to RESULTS_alpaca.md")
    args = parser.parse_args()
    if not args.record_only:
        for label, extra in RUNS.items():
            _run(label, extra, args.dir / label)
    date = _meta(args.dir / "native")["start"][:10]
    lines = [
        "",
        f"## alpaca_sft on ja-instruct: chrF against the references, both instruction languages ({date})",
        "",
        f"Written by `python benchmarks/alpaca_sft_languages.py`. Machine: {os.cpu_count()}-core CPU "
        f"({platform.machine()}), no GPU; Python {platform.python_version()}. conf/ja_instruct as committed; "
        "greedy decoding; chrF is sacrebleu's (character 6-grams, beta 2) of each answer against its reference; "
        "intervals are 95 % paired percentile-bootstrap intervals over the held-out prompts (10,000 resamples). "
        "The generations stay in the runs' git-ignored report.md (they quote the licensed data).",
        "",
    ]
    for label in RUNS:
        if (args.dir / label / "metrics.json").exists():
            lines += _run_section(label, args.dir / label)
        else:
            meta = (args.dir / label / "meta.txt").read_text().split("\n")
            start = meta[0].split()
            end = next((line for line in meta if line.startswith("end ")), "")
            lines += [
                f"### instruction language `{label}`",
                "",
                f"- Command: `{_meta_prefix(args.dir / label)}kedro run --env ja_instruct --pipelines alpaca_sft {shlex.join(RUNS[label])}`"
                f" (commit {start[-1]}), started {start[1]} at load average {start[3]}; {end}",
                "- Not finished: only its base-model answers (before training) were written."
                if (args.dir / label / "answers_before.csv").exists()
                else "- Not finished: it wrote no answers.",
                "",
            ]
    if (args.dir / "native" / "before_after.csv").exists() and any(
        (args.dir / "en" / name).exists() for name in ("before_after.csv", "answers_before.csv")
    ):
        lines += _language_section(args.dir)
    text = "\n".join(lines)
    if args.no_write:
        print(text)
    else:
        with RESULTS.open("a", encoding="utf-8") as f:
            f.write(text)
        print(f"[bench] appended to {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
