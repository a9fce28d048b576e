"""How many training rows each epoch of bge_finetune leaves unseen, at several batch sizes, without training.

The no-duplicates batch sampler keeps a row out of any batch that already holds one of its texts, and the
trainer takes only the batches the sampler announces; rows whose texts repeat (XQuAD: ~5 questions per
paragraph; mined negatives that are other rows' positives) can miss an epoch. This replays the trainer's own
sampler (``rows_left_out``, the function the training node logs with) on a training set a run wrote:

    python benchmarks/bge_rows_left_out.py data/05_model_input/xquad/bge_finetune/training_set.parquet \
        --batch-sizes 16 32 64 --epochs 2 --seed 42
"""

import argparse
import tempfile
import time

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("training_set", help="a bge_finetune.training_set parquet a run wrote")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42, help="trainer.seed of the run")
    a = parser.parse_args()

    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    from qeu_kedro.models import resolve_model
    from qeu_kedro.pipelines.bge_finetune.nodes import recipe_arguments, rows_left_out

    train = pd.read_parquet(a.training_set)
    dataset = Dataset.from_pandas(train, preserve_index=False)
    distinct = ", ".join(f"{c} {train[c].nunique()}" for c in train.columns if c != "id")
    print(f"{a.training_set}: {len(train)} rows; distinct texts per column: {distinct}")
    model = SentenceTransformer(resolve_model("bundled:all-MiniLM-L6-v2"), device="cpu")  # any model: no step is taken
    print("| batch size | batches the trainer takes | rows unseen, epoch by epoch | share unseen (mean) |")
    print("| ---: | ---: | --- | ---: |")
    for batch in a.batch_sizes:
        with tempfile.TemporaryDirectory() as scratch:
            args = SentenceTransformerTrainingArguments(
                **recipe_arguments({"show_progress_bar": False}, scratch, None, None),
                per_device_train_batch_size=batch,
                seed=a.seed,
            )
            trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset)
            started = time.perf_counter()
            left = rows_left_out(trainer, a.epochs)
            taken = -(-len(train) // batch)
        share = sum(left) / (len(left) * len(train))
        print(
            f"| {batch} | {taken} | {', '.join(map(str, left))} | {share:.1%} |  ({time.perf_counter() - started:.1f} s)"
        )


if __name__ == "__main__":
    main()
