"""What chrF gives an answer that only repeats the prompt: the yardstick for reading alpaca_sft's chrF.

chrF counts the character n-grams an answer shares with its reference. A reference often reuses
the words of its question, so an "answer" that echoes the prompt (the prompt's text without its
``### <header>:`` lines) already shares many of them. This script scores that echo on the held-out
prompts of a run and compares it, prompt by prompt, with the run's answers before and after
training (paired bootstrap, 95 % interval, the pipeline's own statistics). When the echo beats the
model, chrF rewards copying the prompt, and a checkpoint chosen by chrF leans towards copying.

Usage:
    python benchmarks/alpaca_sft_echo.py data/08_reporting/ja_instruct/alpaca_sft/before_after.csv
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from qeu_kedro.pipelines.alpaca_sft.measures import chrf, copied_from_prompt_share
from qeu_kedro.pipelines.alpaca_sft.nodes import echo_prompt, paired_change


def main(path: str, ngram: int = 4) -> None:
    table = pd.read_csv(path, keep_default_na=False)
    echoes = [echo_prompt(p) for p in table["prompt"]]
    scores = pd.Series([chrf(e, r) for e, r in zip(echoes, table["reference"], strict=True)])
    copied = np.mean([copied_from_prompt_share(e, p, ngram) for e, p in zip(echoes, table["prompt"], strict=True)])
    settings = {"bootstrap_resamples": 10_000, "bootstrap_seed": 0}
    print(f"{path}: n = {len(table)} held-out prompts")
    print(f"chrF of the echoed prompt: {scores.mean():.4f} (its copied {ngram}-gram share: {copied:.4f})")
    print("| answers | chrF | echo - answers [95 % interval] | verdict for the echo |")
    print("| --- | ---: | ---: | --- |")
    for arm in ("before", "after"):
        c = paired_change(table[f"chrf_{arm}"], scores, True, settings)
        print(
            f"| {arm} training | {c['before']:.4f} | {c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] "
            f"| {c['verdict']} |"
        )
    for arm in ("before", "after"):
        r = np.corrcoef(table[f"chrf_{arm}"], table[f"copied_{ngram}gram_share_{arm}"])[0, 1]
        print(f"correlation of chrF and the copied {ngram}-gram share over the prompts, {arm}: {r:+.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
