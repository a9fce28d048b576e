"""Longer alpaca_sft run on the real Japanese data, and its results written to benchmarks/RESULTS_alpaca.md.

Run from the repository root, with the real data in ../shared/data (or QEU_SHARED_DATA):

    nice -n 10 python benchmarks/alpaca_sft_long.py            # the first long run's sizes (2026-11-23; --steps 300 on an idle machine)
    python benchmarks/alpaca_sft_long.py --steps 24 --eval-size 32 --max-new-tokens 256 --max-length 384
                                                                 # = conf/ja_instruct as committed

Every size is passed to the run (the defaults below override conf/ja_instruct's).

It is `kedro run --env ja_instruct --pipelines alpaca_sft --params ...` with larger sizes (the command is
printed and recorded). Outputs land where that run writes them (data/*/ja_instruct/alpaca_sft/, replacing
the previous real-data run's); the summary is appended to RESULTS_alpaca.md (the generations, which quote the licensed data, stay in
the git-ignored report).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "data" / "08_reporting" / "ja_instruct" / "alpaca_sft"
RESULTS = REPO / "benchmarks" / "RESULTS_alpaca.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="LoRA steps (batch 4)")
    parser.add_argument("--eval-size", type=int, default=24, help="held-out prompts")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=192, help="tokens of prompt + completion in training")
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS_alpaca.md")
    args = parser.parse_args()

    params = (
        f"alpaca_sft.train.trainer.max_steps={args.steps},alpaca_sft.split.eval_size={args.eval_size},"
        f"alpaca_sft.generation.max_new_tokens={args.max_new_tokens},alpaca_sft.train.trainer.max_length={args.max_length}"
    )
    command = ["kedro", "run", "--env", "ja_instruct", "--pipelines", "alpaca_sft", "--params", params]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    print("[bench]", shlex.join(command), flush=True)
    load_before = os.getloadavg()
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()

    metrics = json.loads((OUT / "metrics.json").read_text(encoding="utf-8"))
    train = json.loads((OUT / "train_metrics.json").read_text(encoding="utf-8"))
    report = (OUT / "report.md").read_text(encoding="utf-8")
    lines = [
        "",
        f"## alpaca_sft on ja-instruct: {args.steps} LoRA steps, {args.eval_size} held-out prompts "
        f"({dt.date.today().isoformat()})",
        "",
        f"- Command: `{shlex.join(command)}` (via `python benchmarks/alpaca_sft_long.py"
        f" --steps {args.steps} --eval-size {args.eval_size} --max-new-tokens {args.max_new_tokens}"
        f" --max-length {args.max_length}`)",
        f"- Machine: {os.cpu_count()}-core CPU ({platform.machine()}), no GPU; Python {platform.python_version()}; "
        f"load average {load_before[0]:.1f} at start, {load_after[0]:.1f} at end (other jobs shared the cores)",
        f"- Wall time of the kedro run: {wall / 60:.1f} min; training {train['train_seconds']} s "
        f"({train['seconds_per_step']} s/step, {train['n_train']} training examples, "
        f"{train['trainable_parameters']} trainable parameters = {100 * train['trainable_share']:.2f} %)",
        f"- Train loss (mean over the run) {train['train_loss']}; the reference answers' loss (mean per answer) "
        f"{metrics['overall']['before']['answer_loss']} -> {metrics['overall']['after']['answer_loss']}, "
        f"after - before {metrics['paired']['answer_loss']['difference']:+.4f} "
        f"[{metrics['paired']['answer_loss']['ci_low']:+.4f}, {metrics['paired']['answer_loss']['ci_high']:+.4f}]: "
        f"{metrics['paired']['answer_loss']['verdict']}",
        "",
        # The generations quote the licensed prompts and reference answers: they stay in the
        # git-ignored report under data/, not in the repository's RESULTS file.
        # Its figure stays beside the report too: the image line would be a broken link here.
        "\n".join(
            line
            for line in report.split("\n", 2)[2].split("\n## Generations")[0].replace("\n## ", "\n### ").split("\n")
            if not line.startswith("![")
        ),
        "",
        f"Generations (prompt, reference, before, after): `{OUT.relative_to(REPO)}/report.md` (not versioned: it quotes the licensed data).",
    ]
    if not args.no_write:
        if not RESULTS.exists():
            RESULTS.write_text(
                "# alpaca_sft benchmark results\n\nWritten by benchmarks/alpaca_sft_long.py (the lead merges them "
                "into benchmarks/RESULTS.md). Greedy decoding; measures defined in "
                "src/qeu_kedro/pipelines/alpaca_sft/measures.py.\n",
                encoding="utf-8",
            )
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines))
        print(f"[bench] appended to {RESULTS}")
    print("\n".join(lines[:8]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
