"""The node functions of ``alpaca_sft``, by module: data (check the sheet, complete its categories,
apply the reasoning rules, write the JSON records, prompts and split), training (LoRA SFT or the
preference objective, the checkpoint chosen on validation chrF, the reference answers' loss),
generation (greedy answers decoded whole) and evaluation (answers before and after with their
measures, the paired comparison, the figure and the report). Imported here for callers that want
them in one place."""

from .data import (
    apply_reasoning_rules,
    assign_categories,
    check_alpaca,
    check_split,
    format_prompt,
    make_examples,
    model_prompt,
    split_examples,
    to_records,
)
from .evaluation import (
    compare_before_after,
    describe_comparison,
    generate_answers,
    paired_change,
    plot_before_after,
    report_markdown,
)
from .generation import decode_whole, generate
from .training import answer_losses, echo_prompt, sft_config, train_lora

__all__ = [
    "answer_losses",
    "apply_reasoning_rules",
    "assign_categories",
    "check_alpaca",
    "check_split",
    "compare_before_after",
    "decode_whole",
    "describe_comparison",
    "echo_prompt",
    "format_prompt",
    "generate",
    "generate_answers",
    "make_examples",
    "model_prompt",
    "paired_change",
    "plot_before_after",
    "report_markdown",
    "sft_config",
    "split_examples",
    "to_records",
    "train_lora",
]
