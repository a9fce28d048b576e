"""``alpaca_sft``: sheet -> categories -> rules -> JSON records -> LoRA SFT -> answers before/after -> report.

A modular pipeline in the namespace ``alpaca_sft``: its own datasets are ``alpaca_sft.<name>``
(``alpaca_sft.records``, ``alpaca_sft.metrics``, ``alpaca_sft.report``, ...), one collapsible box
in kedro-viz. It reads the raw sheet ``alpaca_raw`` and the pretrained ``alpaca_base_model``.
"""

from kedro.pipeline import Node, Pipeline

from qeu_kedro.namespaces import modular
from qeu_kedro.preflight import INPUT_CHECK

from .nodes import (
    apply_reasoning_rules,
    assign_categories,
    check_alpaca,
    check_split,
    compare_before_after,
    generate_answers,
    make_examples,
    plot_before_after,
    report_markdown,
    split_examples,
    to_records,
    train_lora,
)

P = "params:alpaca_sft"
INPUTS = {"alpaca_raw", "alpaca_base_model"}


def create_template() -> Pipeline:
    """The pipeline before namespacing: dataset names without the ``alpaca_sft.`` prefix."""
    return Pipeline(
        [
            Node(
                check_alpaca,
                ["alpaca_raw", f"{P}.schema", f"{P}.category_rules"],
                "checked",
                name="check_alpaca",
                tags=INPUT_CHECK,
            ),
            Node(
                assign_categories,
                ["checked", f"{P}.category_rules", f"{P}.schema"],
                "categorised",
                name="assign_categories",
                tags=INPUT_CHECK,
            ),
            Node(
                apply_reasoning_rules,
                ["categorised", f"{P}.reasoning_rules"],
                "reasoned",
                name="apply_reasoning_rules",
                tags=INPUT_CHECK,
            ),
            # the split is checked before the records are written: a split the sheet cannot give saves nothing
            Node(check_split, ["reasoned", f"{P}.split"], "split_checked", name="check_split", tags=INPUT_CHECK),
            Node(to_records, "split_checked", "records", name="write_alpaca_records"),
            Node(
                make_examples,
                ["records", f"{P}.prompt", f"{P}.split.group_by"],
                "examples",
                name="make_sft_examples",
            ),
            Node(
                split_examples,
                ["examples", f"{P}.split"],
                ["train", "validation", "held_out"],
                name="split_sft_examples",
            ),
            Node(
                train_lora,
                [
                    "train",
                    "validation",
                    "alpaca_base_model",
                    f"{P}.prompt",
                    f"{P}.train",
                    f"{P}.generation",
                ],
                ["lora_adapter", "train_metrics"],
                name="train_lora",
            ),
            Node(
                generate_answers,
                ["held_out", "alpaca_base_model", f"{P}.prompt", f"{P}.generation", f"{P}.measures"],
                "answers_before",
                name="generate_answers_before",
            ),
            Node(
                generate_answers,
                ["held_out", "lora_adapter", f"{P}.prompt", f"{P}.generation", f"{P}.measures"],
                "answers_after",
                name="generate_answers_after",
            ),
            Node(
                compare_before_after,
                ["answers_before", "answers_after", "train_metrics", f"{P}.measures"],
                ["before_after", "metrics"],
                name="compare_before_after",
            ),
            Node(
                plot_before_after,
                ["metrics", f"{P}.measures", f"{P}.report.data"],
                "before_after_plot",
                name="plot_before_after",
            ),
            Node(
                report_markdown,
                ["before_after", "metrics", f"{P}.measures", f"{P}.report", "before_after_plot"],
                "report",
                name="report_alpaca_sft",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    return modular(create_template(), "alpaca_sft", inputs=INPUTS)
