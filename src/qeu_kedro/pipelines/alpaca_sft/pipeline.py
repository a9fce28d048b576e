"""``alpaca_sft``: sheet -> rules -> JSON records -> LoRA SFT -> answers before/after -> report."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    apply_reasoning_rules,
    check_alpaca,
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


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(check_alpaca, ["alpaca_raw", f"{P}.schema"], "alpaca_checked", name="check_alpaca"),
            Node(apply_reasoning_rules, ["alpaca_checked", f"{P}.reasoning_rules"], "alpaca_reasoned", name="apply_reasoning_rules"),
            Node(to_records, "alpaca_reasoned", "alpaca_records", name="write_alpaca_records"),
            Node(make_examples, ["alpaca_records", f"{P}.prompt"], "alpaca_examples", name="make_sft_examples"),
            Node(split_examples, ["alpaca_examples", f"{P}.split"],
                 ["alpaca_train", "alpaca_validation", "alpaca_held_out"], name="split_sft_examples"),
            Node(
                train_lora,
                [
                    "alpaca_train", "alpaca_validation", "alpaca_held_out", "alpaca_base_model",
                    f"{P}.prompt", f"{P}.train", f"{P}.generation",
                ],
                ["alpaca_lora_adapter", "alpaca_train_metrics"],
                name="train_lora",
            ),
            Node(
                generate_answers,
                ["alpaca_held_out", "alpaca_base_model", f"{P}.prompt", f"{P}.generation", f"{P}.measures"],
                "alpaca_answers_before",
                name="generate_answers_before",
            ),
            Node(
                generate_answers,
                ["alpaca_held_out", "alpaca_lora_adapter", f"{P}.prompt", f"{P}.generation", f"{P}.measures"],
                "alpaca_answers_after",
                name="generate_answers_after",
            ),
            Node(
                compare_before_after,
                ["alpaca_answers_before", "alpaca_answers_after", "alpaca_train_metrics", f"{P}.measures"],
                ["alpaca_before_after", "alpaca_sft_metrics"],
                name="compare_before_after",
            ),
            Node(
                plot_before_after,
                ["alpaca_sft_metrics", f"{P}.measures", f"{P}.report.data"],
                "alpaca_before_after_plot",
                name="plot_before_after",
            ),
            Node(
                report_markdown,
                ["alpaca_before_after", "alpaca_sft_metrics", f"{P}.measures", f"{P}.report.cell_chars"],
                "alpaca_sft_report",
                name="report_alpaca_sft",
            ),
        ]
    )
