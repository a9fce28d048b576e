"""Probe for issue 13: SFT first, then the preference stage on top of the SFT adapter.

The pipeline's ``objective: preference`` trains DPO (+ the SFT loss) from the base model, whose
reference is the base model. The usual recipe is two stages: SFT, then preference training that
starts from the SFT model and keeps it as the reference. Here:

1. the pipeline's own ``train_lora`` with ``objective: sft`` (the committed ``ja_instruct`` recipe,
   the adapter chosen on validation chrF);
2. TRL's ``DPOTrainer`` on that adapter (peft model in, no new adapter: TRL copies the trained
   adapter as the frozen reference), on the pipeline's preference pairs (the reference answer chosen,
   the echoed prompt rejected), ``dpo_config`` from the same parameters, the checkpoint again chosen on
   validation chrF;
3. the held-out answers of the base model and of the two-stage model, measured and compared as the
   pipeline does (``compare_before_after``), written as ``before_after.csv`` and ``metrics.json`` so that
   ``benchmarks/alpaca_sft_ab.py`` pairs them with a pipeline run.

The parameters are ``conf/ja_instruct``'s (``train.preference`` included); ``--weight`` sets the
preference term's weight (``loss_weights: [w, 1.0]``). Reads ../shared/data through the catalog.

Usage (about 20 min on 2 idle cores with conf/ja_instruct's former 64-token answers; longer with its 256):
    python benchmarks/alpaca_sft_then_preference.py --weight 0.3 --out data/benchmarks/alpaca_sft/sft_then_pref
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from qeu_kedro.pipelines.alpaca_sft import nodes, training
from qeu_kedro.pipelines.alpaca_sft.pipeline import create_pipeline

SPLIT = ("alpaca_sft.train", "alpaca_sft.validation", "alpaca_sft.held_out")


def load(env: str) -> tuple[dict, tuple, object, object]:
    """The environment's alpaca_sft parameters, its (train, validation, held-out) split and two copies
    of the base model (one is wrapped by training, the other answers "before").

    The split comes from the pipeline's own nodes up to ``split_sft_examples`` (checks, categories,
    reasoning rules, examples, split), run in memory in the pipeline's order: nothing is written.
    """
    bootstrap_project(Path.cwd())
    with KedroSession.create(env=env) as session:
        catalog = session.load_context().catalog
        values: dict[str, object] = {}
        for node in create_pipeline().to_outputs(*SPLIT).nodes:  # topologically sorted
            values.update(
                node.run({name: values[name] if name in values else catalog.load(name) for name in node.inputs})
            )
        params = catalog.load("params:alpaca_sft")
        trained, base = catalog.load("alpaca_base_model"), catalog.load("alpaca_base_model")
    return params, tuple(values[name] for name in SPLIT), trained, base


def sft_then_preference(
    train, validation, base_model, prompt: dict, params: dict, generation: dict, weight: float
) -> tuple[object, dict, dict]:
    """Stage 1: the pipeline's ``train_lora`` with ``objective: sft``. Stage 2: DPO (+ SFT loss, the
    preference term weighted ``weight``) on the same adapter, the SFT adapter kept frozen as TRL's
    ``ref`` adapter (the reference model); the stage-2 step is chosen on validation chrF.

    Returns the model handle (adapter ``default`` active), the SFT stage's metrics and the stage-2 metrics.
    """
    sft = {**params, "objective": "sft"}
    handle, sft_metrics = nodes.train_lora(train, validation, base_model, prompt, sft, generation)
    pref = {**sft, "preference": {**sft["preference"], "loss_weights": [weight, 1.0]}}
    checkpoint = training.chrf_checkpoint_callback(
        validation, handle.tokenizer, prompt, generation, pref["checkpoint_every"]
    )
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="alpaca_sft-pref-") as scratch:
        trainer = training.dpo_trainer_class(pref["rejected_ends_turn"])(  # the pipeline's switch holds here too
            model=handle.model,
            args=training.dpo_config(pref, scratch),
            train_dataset=training.preference_dataset(train, handle.tokenizer, prompt),
            processing_class=handle.tokenizer,
            callbacks=[checkpoint],
        )
        result = trainer.train()
        model = trainer.model
        training.restore_best_adapter(model, checkpoint)
    model.set_adapter("default")  # the trained adapter answers (TRL's frozen copy is named "ref")
    model.eval()
    stage2 = {
        "global_step": int(result.global_step),
        "chosen_step": checkpoint.best_step,
        "validation_chrf_curve": checkpoint.curve,
        "seconds": round(time.time() - started, 1),
    }
    lm = type(handle)(f"{handle.source} + preference stage", model=model, tokenizer=handle.tokenizer)
    return lm, sft_metrics, stage2


def main(env: str, weight: float, out: Path) -> None:
    params, (train, validation, held_out), trained, base = load(env)
    prompt, generation, measures = params["prompt"], params["generation"], params["measures"]
    lm, sft_metrics, stage2 = sft_then_preference(
        train, validation, trained, prompt, params["train"], generation, weight
    )
    before = nodes.generate_answers(held_out, base, prompt, generation, measures)
    after = nodes.generate_answers(held_out, lm, prompt, generation, measures)
    train_metrics = {
        **sft_metrics,
        "objective": f"sft ({sft_metrics['global_step']} steps, step {sft_metrics['chosen_step']} kept) "
        f"then preference (w {weight})",
        "global_step": stage2["global_step"],
        "chosen_step": stage2["chosen_step"],
        "validation_chrf_curve": stage2["validation_chrf_curve"],
        "train_seconds": round(sft_metrics["train_seconds"] + stage2["seconds"], 1),
        "sft_validation_chrf_curve": sft_metrics["validation_chrf_curve"],
        "preference_seconds": stage2["seconds"],
    }
    table, summary = nodes.compare_before_after(before, after, train_metrics, measures)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "before_after.csv", index=False)
    (out / "metrics.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=float))
    (out / "train_metrics.json").write_text(json.dumps(train_metrics, indent=1, ensure_ascii=False, default=float))
    print(f"SFT {sft_metrics['train_seconds']:.0f} s, preference stage {stage2['seconds']:.0f} s; written to {out}")
    for name, c in summary["paired"].items():
        print(
            f"{name}: {c['before']:.4f} -> {c['after']:.4f}, {c['difference']:+.4f} "
            f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] {c['verdict']}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="ja_instruct")
    parser.add_argument("--weight", type=float, default=1.0, help="weight of the preference term (the SFT term's is 1)")
    parser.add_argument("--out", type=Path, default=Path("data/benchmarks/alpaca_sft/sft_then_pref"))
    a = parser.parse_args()
    main(a.env, a.weight, a.out)
