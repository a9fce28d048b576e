"""Parameters are checked before any node runs: typos, types, ranges, layered environments, CLI names."""

from __future__ import annotations

from pathlib import Path

import pytest

from qeu_kedro.parameters import ParameterError, base_parameters, check_parameters
from tests.conftest import REPO, load_config, run_kedro

ENVS = ["local", "movielens", "xquad", "debian", "jrte", "ja_instruct", "hub"]


@pytest.fixture(scope="module")
def base() -> dict:
    return base_parameters(REPO / "conf")


def with_changes(tree: dict, **dotted) -> dict:
    import copy

    out = copy.deepcopy(tree)
    for key, value in dotted.items():
        node = out
        *parents, leaf = key.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return out


@pytest.mark.parametrize("env", ENVS)
def test_every_shipped_environment_passes(env):
    merged = load_config(REPO, env, "parameters")
    check_parameters(merged, base_parameters(REPO / "conf"))


@pytest.mark.parametrize("env", ENVS)
def test_no_environment_tries_to_empty_a_block_of_conf_base(env):
    """Parameters merge key by key onto conf/base: an empty mapping in an environment changes nothing (conf/xquad's
    `loss.kwargs: {}` left conf/base's symmetric MNRL in place). An environment must say the values it wants."""
    import yaml

    def empties(tree, path=()):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from ([path + (key,)] if not value else empties(value, path + (key,)))

    base = load_config(REPO, None, "parameters")
    for file in sorted((REPO / "conf" / env).glob("parameters*.yml")):
        for path in empties(yaml.safe_load(file.read_text()) or {}):
            node = base
            for key in path:
                node = node.get(key, {}) if isinstance(node, dict) else {}
            assert not node, f"{file.name}: {'.'.join(path)} is {{}}, which keeps conf/base's {node}"


def test_the_xquad_environment_trains_with_the_one_way_loss_it_says():
    loss = load_config(REPO, "xquad", "parameters")["bge_finetune"]["loss"]
    assert loss["kwargs"] == {"directions": ["query_to_doc"]} and loss["matryoshka_weights"] is None


def test_a_typo_is_refused_with_the_closest_key(base):
    with pytest.raises(
        ParameterError, match=r"ridge_analysis\.alpah .*unknown key; did you mean 'ridge_analysis\.alpha'"
    ):
        check_parameters(with_changes(base, ridge_analysis__alpah=1.0), base)
    with pytest.raises(
        ParameterError, match=r"bge_finetune\.split\.tset_size.*did you mean 'bge_finetune\.split\.test_size'"
    ):
        check_parameters(with_changes(base, bge_finetune__split__tset_size=0.3), base)


def test_matryoshka_weights_must_match_the_dimensions_before_anything_runs(base):
    # conf/base weighs 5 dimensions (auto); a run that asks for 2 dimensions must give 2 weights (or null)
    with pytest.raises(
        ParameterError,
        match=r"bge_finetune\.loss\.matryoshka_weights \(the parameters\): 5 weights for the 2 dimensions of "
        r"bge_finetune\.matryoshka_dims \[384, 64\]",
    ):
        check_parameters(with_changes(base, bge_finetune__matryoshka_dims=[384, 64]), base)
    two = with_changes(base, bge_finetune__matryoshka_dims=[384, 64])
    check_parameters(with_changes(two, bge_finetune__loss__matryoshka_weights=[64, 1]), base)
    check_parameters(with_changes(two, bge_finetune__loss__matryoshka_weights=None), base)
    check_parameters(base, base)  # auto: the count is known only with the model (the loss checks it then)


def test_auto_dimensions_take_five_matryoshka_weights_whatever_the_model(base):
    """auto gives up to 5 dimensions (4 for a 256-dim model, which uses the first 4 weights): any other count of
    weights is refused before the run, not inside fine_tune after the split and base scores are written."""
    with pytest.raises(ParameterError, match=r"matryoshka_weights \(the parameters\): 4 weights for .*auto.*give 5"):
        check_parameters(with_changes(base, bge_finetune__loss__matryoshka_weights=[64, 1, 1, 1]), base)
    check_parameters(with_changes(base, bge_finetune__loss__matryoshka_weights=[8, 4, 2, 1, 1]), base)


@pytest.mark.parametrize(
    "key",
    ["bge_finetune__statistics__n_resamples", "jrte_sentiment__statistics__n_resamples"]
    + ["alpaca_sft__measures__bootstrap_resamples"],
)
def test_a_bootstrap_of_too_few_resamples_is_refused(base, key):
    """n_resamples: 1 passed, and its 'interval' called a no-difference comparison better or worse at random."""
    for few in (1, 999, 2000.5):
        with pytest.raises(
            ParameterError, match=key.replace("__", r"\.") + r".*(greater than or equal to 1000|integer)"
        ):
            check_parameters(with_changes(base, **{key: few}), base)
    check_parameters(with_changes(base, **{key: 1000}), base)


@pytest.mark.parametrize(
    "key",
    [
        "bge_finetune__source__drop_incomplete",
        "bge_finetune__hard_negatives__mine",
        "bge_finetune__hard_negatives__use_negative_column",
        "bge_finetune__show_progress_bar",
    ],
)
def test_a_bge_switch_given_as_text_is_refused(base, key):
    """The nodes read these with bool(...): the text "no" (quoted in YAML, or from --params) counted as true."""
    with pytest.raises(ParameterError, match=key.replace("__", r"\.") + r".*valid boolean, found 'no'"):
        check_parameters(with_changes(base, **{key: "no"}), base)
    check_parameters(with_changes(base, **{key: False}), base)


def test_a_loss_its_kwargs_do_not_fit_and_a_trainer_key_the_recipe_sets_are_refused_before_the_run(base):
    """Both failed inside the training node, after the base model had been scored (a review found them)."""
    gist = with_changes(base, bge_finetune__loss__name="gist")  # conf/base's kwargs are MNRL's (directions)
    with pytest.raises(
        ParameterError,
        match=r"bge_finetune\.loss .*loss\.kwargs \['directions'\] are not keyword "
        r"arguments of GISTEmbedLoss.*Set loss\.kwargs for the loss you choose",
    ):
        check_parameters(gist, base)
    check_parameters(with_changes(gist, bge_finetune__loss__kwargs={}), base)
    with pytest.raises(
        ParameterError,
        match=r"bge_finetune\.trainer\.eval_steps .*the recipe sets it itself "
        r"\(validation\.eval_steps",
    ):
        check_parameters(with_changes(base, bge_finetune__trainer__eval_steps=5), base)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # a column of the sheet the examples do not keep, and a typo: check_split passed both, the split then died
        # with a bare KeyError after the records were written
        (
            {"alpaca_sft__split__stratify_by": "field"},
            r"alpaca_sft\.split\.stratify_by .*'field' is not a column of the examples that are split \(they keep "
            r"\['NO', 'language', 'category', 'uniqueness', 'seq'\]",
        ),
        (
            {"alpaca_sft__split__stratify_by": "langauge", "alpaca_sft__split__group_by": None},
            r"alpaca_sft\.split\.stratify_by .*'langauge'.*\['NO', 'language', 'category', 'uniqueness'\]",
        ),
        # the sizes: RULES' ranges, before anything is written
        ({"alpaca_sft__split__eval_size": 3}, r"alpaca_sft\.split\.eval_size .*greater than or equal to 6"),
        ({"alpaca_sft__split__validation_size": 0}, r"alpaca_sft\.split\.validation_size .*greater than or equal to 1"),
        # a trainer key the recipe sets: TypeError "SFTConfig() got multiple values for keyword argument" in train_lora
        (
            {"alpaca_sft__train__trainer__report_to": "mlflow"},
            r"alpaca_sft\.train\.trainer\.report_to .*the recipe sets it itself \(it fixes output_dir, "
            r"completion_only_loss, packing, eval_strategy, save_strategy, report_to, use_cpu, dataloader_num_workers",
        ),
        (
            {"alpaca_sft__train__trainer__completion_only_loss": False},
            r"alpaca_sft\.train\.trainer\.completion_only_loss .*the recipe sets it itself",
        ),
        (
            {"alpaca_sft__train__preference__use_cpu": False},
            r"alpaca_sft\.train\.preference\.use_cpu .*the recipe sets it itself",
        ),
        (
            {"alpaca_sft__train__trainer__beta": 0.2},
            r"alpaca_sft\.train\.preference\.beta .*also given in alpaca_sft\.train\.trainer",
        ),
    ],
)
def test_alpaca_split_and_trainer_settings_the_nodes_would_refuse_late_are_refused_before_the_run(
    base, changes, message
):
    with pytest.raises(ParameterError, match=message):
        check_parameters(with_changes(base, **changes), base, blocks={"alpaca_sft"})


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        # 0 scored a verbatim echo of the prompt as copied 0 (the copying target then read "met"), and the repeated
        # share a function of the answer's length only
        ("ngram", 0, "greater than or equal to 1"),
        ("ngram", -2, "greater than or equal to 1"),
        ("ngram", 2.5, "valid integer"),
        ("kana_share_for_ja", 10, "less than or equal to 1"),  # a percentage
        ("kana_share_for_ja", -0.1, "greater than or equal to 0"),
        ("kana_share_for_ja", "0.1", "valid number"),  # quoted in YAML: compared as text in the node
    ],
)
def test_alpaca_measures_take_an_ngram_of_1_or_more_and_a_kana_share_from_0_to_1(base, key, value, words):
    with pytest.raises(ParameterError, match=rf"alpaca_sft\.measures\.{key} \(the parameters\): .*{words}"):
        check_parameters(with_changes(base, **{f"alpaca_sft__measures__{key}": value}), base, blocks={"alpaca_sft"})
    for ngram, share in ((1, 0), (4, 0.1), (2, 1)):
        changed = with_changes(base, alpaca_sft__measures__ngram=ngram, alpaca_sft__measures__kana_share_for_ja=share)
        check_parameters(changed, base, blocks={"alpaca_sft"})


def test_alpaca_stratify_by_takes_the_columns_the_examples_keep(base):
    for column in ("language", "category", "uniqueness", "seq", None):
        check_parameters(with_changes(base, alpaca_sft__split__stratify_by=column), base, blocks={"alpaca_sft"})


def test_jrte_level2_cannot_be_switched_off_but_the_other_runs_can(base):
    with pytest.raises(ParameterError, match=r"jrte_sentiment\.level2\.enabled \(the parameters\): Level 2 cannot be"):
        check_parameters(with_changes(base, jrte_sentiment__level2__enabled=False), base)
    check_parameters(
        with_changes(base, jrte_sentiment__baseline__enabled=False, jrte_sentiment__soft_labels__enabled=False), base
    )
    with pytest.raises(ParameterError, match=r"jrte_sentiment\.level2\.enabled \(the parameters\): .*bool"):
        check_parameters(with_changes(base, jrte_sentiment__level2__enabled=0), base)  # not a way round the rule


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"jrte_sentiment__level5__decision_rule__class": "neutral"},
            r"level5\.decision_rule\.class \(the parameters\): 'neutral' is not a class of jrte_sentiment\.task\.classes "
            r"\['negative', 'normal', 'positive'\]",
        ),
        ({"jrte_sentiment__level5__decision_rule__grid": [-2.0, 2.0, 0.0]}, r"decision_rule\.grid .*step > 0"),
        ({"jrte_sentiment__level5__decision_rule__grid": [2.0, -2.0, 0.1]}, r"decision_rule\.grid .*start <= stop"),
        ({"jrte_sentiment__level5__decision_rule__grid": [-2.0, 2.0]}, r"decision_rule\.grid .*at least 3 items"),
        (
            {"jrte_sentiment__level5__seed_ensemble__seeds": [1, 42]},
            r"seed_ensemble\.seeds .*\[1, 42\] must be distinct seeds other than Level 2's own \(42",
        ),
        ({"jrte_sentiment__level5__seed_ensemble__seeds": [1, 1]}, r"seed_ensemble\.seeds .*must be distinct"),
        (
            {"jrte_sentiment__level5__ensemble__members": ["level2", "baseline"]},
            r"ensemble\.members .*\['baseline'\] are not runs the ensemble is given; choose from \['level2', "
            r"'soft_labels', 'weighted_soft_labels'\]",
        ),
        ({"jrte_sentiment__level5__ensemble__members": ["level2", "level2"]}, r"ensemble\.members .*more than once"),
        (
            {"jrte_sentiment__error_analysis__splits": ["tset"]},
            r"error_analysis\.splits .*'train', 'dev' or 'test', found \['tset'\]",
        ),
        (
            {"jrte_sentiment__error_analysis__splits": ["dev"], "jrte_sentiment__level2__predict_splits": ["test"]},
            r"error_analysis\.splits .*\['dev'\] are not predicted by Level 2 \(level2\.predict_splits \['test'\]\)",
        ),
        ({"jrte_sentiment__split__max_rows__train": 0}, r"split\.max_rows\.train .*greater than or equal to 1"),
        ({"jrte_sentiment__split__max_rows__train": 2.5}, r"split\.max_rows\.train .*valid integer"),
        ({"jrte_sentiment__split__max_rows__dev": 0}, r"split\.max_rows\.dev .*greater than or equal to 6"),
        ({"jrte_sentiment__task__annotators": 0}, r"task\.annotators .*greater than or equal to 1"),
        ({"jrte_sentiment__task__annotators": 2.5}, r"task\.annotators .*valid integer"),
        ({"jrte_sentiment__task__annotators": "3"}, r"task\.annotators .*valid integer"),
        # Level 3's buckets: pandas' "bins must increase monotonically", after Level 2 had trained
        (
            {"jrte_sentiment__error_analysis__length_edges": [0, 40, 20, 1000]},
            r"error_analysis\.length_edges \(the parameters\): \[0, 40, 20, 1000\] do not increase from each edge to "
            r"the next \(40 then 20\); list the edges in increasing order without repeats, e\.g\. \[0, 20, 40, 1000\]",
        ),
        (
            {"jrte_sentiment__error_analysis__agreement_edges": [0, 0.9, 0.9, 1.01]},
            r"error_analysis\.agreement_edges .*\(0\.9 then 0\.9\)",
        ),
        (
            {"jrte_sentiment__error_analysis__agreement_edges": [0]},
            r"error_analysis\.agreement_edges .*at least 2 items",
        ),
        ({"jrte_sentiment__error_analysis__length_edges": [0, "10", 20]}, r"error_analysis\.length_edges .*valid"),
        # a percentage: every Level 1 prediction (top score below 75) became the unsure class, silently
        (
            {"jrte_sentiment__level1__mapping__unsure_below": 75},
            r"level1\.mapping\.unsure_below .*less than or equal to 1",
        ),
        (
            {"jrte_sentiment__level1__mapping__unsure_below": -0.5},
            r"mapping\.unsure_below .*greater than or equal to 0",
        ),
        ({"jrte_sentiment__level1__mapping__unsure_below": "0.75"}, r"mapping\.unsure_below .*valid number"),
    ],
)
def test_jrte_level3_and_level5_settings_the_nodes_would_refuse_late_are_refused_before_the_run(base, changes, message):
    with pytest.raises(ParameterError, match=message):
        check_parameters(with_changes(base, **changes), base)


@pytest.mark.parametrize(
    ("run", "splits", "message"),
    [
        ("baseline", ["dev"], r"\['dev'\] leaves out test: every run is scored on test"),
        ("level2", ["train", "test"], r"leaves out dev: Level 5 tunes the decision rule on Level 2's dev predictions"),
        ("soft_labels", ["test"], r"leaves out dev: Level 5 picks the candidate it keeps by its dev macro-F1"),
        ("weighted_soft_labels", ["test"], r"leaves out dev: Level 5 picks"),
        ("weighted_soft_labels", ["dev"], r"leaves out test"),
        ("soft_labels", ["dev", "tset"], r"'train', 'dev' or 'test'"),
        ("baseline", [], r"at least 1 item"),
    ],
)
def test_jrte_a_run_must_predict_the_splits_the_levels_read_from_it(base, run, splits, message):
    """A run without test, or a Level 5 run without dev, trained and then failed in its evaluation or in Level 5
    with scikit-learn's 'Found empty input array', which names no parameter."""
    key = rf"jrte_sentiment\.{run}\.predict_splits \(the parameters\): "
    with pytest.raises(ParameterError, match=key + ".*" + message):
        check_parameters(with_changes(base, **{f"jrte_sentiment__{run}__predict_splits": splits}), base)


def test_jrte_predict_splits_are_not_checked_for_a_run_switched_off_and_the_baseline_needs_no_dev(base):
    check_parameters(with_changes(base, jrte_sentiment__baseline__predict_splits=["test"]), base)
    check_parameters(with_changes(base, jrte_sentiment__level2__predict_splits=["test", "dev", "train"]), base)
    for run in ("baseline", "soft_labels", "weighted_soft_labels"):
        changed = with_changes(base, **{f"jrte_sentiment__{run}__predict_splits": ["train"]})
        changed["jrte_sentiment"][run]["enabled"] = False
        check_parameters(changed, base)


def test_jrte_class_names_must_be_text(base):
    """`name: 0` passed the parameter check and crashed the first evaluation after Level 1 had predicted."""
    classes = [{"value": -1, "name": "negative"}, {"value": 0, "name": 0}, {"value": 1, "name": "positive"}]
    changed = with_changes(
        base, jrte_sentiment__task__classes=classes, jrte_sentiment__level5__decision_rule__class="positive"
    )
    changed["jrte_sentiment"]["level1"]["mapping"]["unsure_class"] = None
    with pytest.raises(
        ParameterError,
        match=r"jrte_sentiment\.task\.classes \(the parameters\): each class name must be text, found "
        r'\[0\]; quote it: name: "0"',
    ):
        check_parameters(changed, base)
    classes[1]["name"] = "0"
    check_parameters(changed, base)


@pytest.mark.parametrize("name", ["", "  "])
def test_jrte_class_names_must_not_be_blank(base, name):
    """An empty name passed the parameter check; the predictions' CSV read it back as NaN and the evaluation failed."""
    classes = [{"value": 0, "name": name}, {"value": 1, "name": "positive"}]
    changed = with_changes(
        base, jrte_sentiment__task__classes=classes, jrte_sentiment__level5__decision_rule__class="positive"
    )
    changed["jrte_sentiment"]["level1"]["mapping"] = {
        "labels": {"positive": "positive", "negative": name},
        "unsure_class": None,
        "unsure_below": 0.75,
    }
    with pytest.raises(
        ParameterError,
        match=r"jrte_sentiment\.task\.classes \(the parameters\): the classes of value \[0\] have an empty name",
    ):
        check_parameters(changed, base)


def test_jrte_level5_checks_follow_the_configured_task_and_switches(base):
    two_class = [{"value": 0, "name": "negative"}, {"value": 1, "name": "positive"}]
    check_parameters(
        with_changes(
            base,
            jrte_sentiment__task__classes=two_class,
            jrte_sentiment__level5__decision_rule__class="negative",
            jrte_sentiment__level1__mapping__unsure_class=None,
        ),
        base,
    )
    with pytest.raises(ParameterError, match=r"'normal' is not a class of jrte_sentiment\.task\.classes"):
        check_parameters(
            with_changes(
                base, jrte_sentiment__task__classes=two_class, jrte_sentiment__level1__mapping__unsure_class=None
            ),
            base,
        )
    # Level 2's seed set in its own trainer block is the one the seed ensemble must avoid
    check_parameters(with_changes(base, jrte_sentiment__level2__trainer__seed=7), base)
    with pytest.raises(ParameterError, match=r"Level 2's own \(7"):
        check_parameters(
            with_changes(
                base, jrte_sentiment__level2__trainer__seed=7, jrte_sentiment__level5__seed_ensemble__seeds=[7]
            ),
            base,
        )
    # a candidate switched off is not checked
    rule = {**base["jrte_sentiment"]["level5"]["decision_rule"], "enabled": False, "class": "neutral"}
    check_parameters(with_changes(base, jrte_sentiment__level5__decision_rule=rule), base)
    check_parameters(with_changes(base, jrte_sentiment__split__max_rows__train=1), base)
    check_parameters(with_changes(base, jrte_sentiment__task__annotators=None), base)  # a corpus without a panel


TWO_CLASS = [{"value": 0, "name": "negative"}, {"value": 1, "name": "positive"}]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # conf/base's unsure class under a 2-class task: refused by Level 1's predict node, after baseline.fine_tune
        (
            {},
            r"jrte_sentiment\.level1\.mapping\.unsure_class \(the parameters\): 'normal' is not a class of the task "
            r"\(\['negative', 'positive'\]\); .*or set it to null for no unsure band \(a 2-class task\)",
        ),
        (
            {
                "jrte_sentiment__level1__mapping__unsure_class": None,
                "jrte_sentiment__level1__mapping__labels": {"positive": "positive", "negative": "negativ"},
            },
            r"jrte_sentiment\.level1\.mapping\.labels \(the parameters\): maps to \['negativ'\], which are not "
            r"classes of the task \(\['negative', 'positive'\]\); map each of the 2-class model's labels to one of them",
        ),
        # the embedding_zero_shot model answers its descriptions' labels: one not mapped failed at Level 1's predict
        (
            {
                "jrte_sentiment__level1__mapping__unsure_class": None,
                "jrte_sentiment__level1__mapping__labels": {"positive": "positive", "negatve": "negative"},
            },
            r"jrte_sentiment\.level1\.mapping\.labels \(the parameters\): \['negative'\] are labels of "
            r"jrte_sentiment\.level1\.descriptions .* that it does not map",
        ),
        ({"jrte_sentiment__level1__method": "zero_shot"}, r"level1\.method .*'embedding_zero_shot' or 'pipeline'"),
    ],
)
def test_jrte_level1_mapping_is_checked_against_the_classes_before_the_run(base, changes, message):
    two_class = {
        "jrte_sentiment__task__classes": TWO_CLASS,
        "jrte_sentiment__level5__decision_rule__class": "negative",
    }
    with pytest.raises(ParameterError, match=message):
        check_parameters(with_changes(base, **two_class, **changes), base)


def test_jrte_level1_mapping_of_a_two_class_task_passes_with_no_unsure_class_and_other_methods_labels(base):
    changes = {
        "jrte_sentiment__task__classes": TWO_CLASS,
        "jrte_sentiment__level5__decision_rule__class": "negative",
        "jrte_sentiment__level1__mapping__unsure_class": None,
    }
    check_parameters(with_changes(base, **changes), base)
    # the pipeline method answers the hub model's own labels, which the descriptions do not name
    labels = {"POSITIVE": "positive", "NEGATIVE": "negative"}
    check_parameters(
        with_changes(
            base, **changes, jrte_sentiment__level1__method="pipeline", jrte_sentiment__level1__mapping__labels=labels
        ),
        base,
    )


def test_jrte_label_smoothing_is_refused_where_the_runs_own_loss_would_skip_it(base):
    # soft_labels and weighted_soft_labels train with the pipeline's own loss: the Trainer would skip smoothing
    with pytest.raises(
        ParameterError,
        match=r"jrte_sentiment\.soft_labels\.trainer\.label_smoothing_factor \(the parameters\): 0\.1 has no effect "
        r"in the run 'soft_labels', whose soft_labels give the Trainer its own loss",
    ):
        check_parameters(with_changes(base, jrte_sentiment__soft_labels__trainer__label_smoothing_factor=0.1), base)
    # set in the shared block, it reaches every run that does not set its own
    weighted = with_changes(base, jrte_sentiment__training__trainer__label_smoothing_factor=0.1)
    del weighted["jrte_sentiment"]["weighted_soft_labels"]["trainer"]["label_smoothing_factor"]
    with pytest.raises(
        ParameterError,
        match=r"jrte_sentiment\.training\.trainer\.label_smoothing_factor .*in the run 'weighted_soft_labels', "
        r"whose soft_labels and class_weights",
    ):
        check_parameters(weighted, base)
    # Level 2 trains with the Trainer's own loss: smoothing works there
    check_parameters(with_changes(base, jrte_sentiment__level2__trainer__label_smoothing_factor=0.1), base)


def test_a_library_block_takes_any_field_of_the_librarys_config_class_and_only_those(base):
    # alpaca_sft.train.lora is passed as it is to peft's LoraConfig: use_rslora is one of its fields
    check_parameters(with_changes(base, alpaca_sft__train__lora__use_rslora=True), base)
    with pytest.raises(
        ParameterError,
        match=r"alpaca_sft\.train\.lora\.lora_alhpa .*not a field of peft\.LoraConfig; "
        r"did you mean 'alpaca_sft\.train\.lora\.lora_alpha'",
    ):
        check_parameters(with_changes(base, alpaca_sft__train__lora__lora_alhpa=32), base)
    # alpaca_sft.train.preference is TRL's DPOConfig: label_smoothing is one of its fields
    check_parameters(with_changes(base, alpaca_sft__train__preference__label_smoothing=0.1), base)
    with pytest.raises(ParameterError, match=r"alpaca_sft\.train\.preference\.bta .*not a field of trl\.DPOConfig"):
        check_parameters(with_changes(base, alpaca_sft__train__preference__bta=0.2), base)


def test_jrte_trainer_and_model_config_blocks_take_their_classes_fields_and_only_those(base):
    """A run's trainer block is TrainingArguments, its config block the model's config class: a valid knob in
    the shared training.trainer was refused (pointing at alpaca_sft), a typo in a run's block passed and failed
    inside the training node."""
    check_parameters(with_changes(base, jrte_sentiment__training__trainer__gradient_accumulation_steps=2), base)
    check_parameters(with_changes(base, jrte_sentiment__baseline__trainer__max_grad_norm=0.5), base)
    check_parameters(with_changes(base, jrte_sentiment__level2__config__layer_norm_eps=1e-6), base)
    with pytest.raises(
        ParameterError,
        match=r"jrte_sentiment\.baseline\.trainer\.num_train_epochz .*not a field of transformers\.TrainingArguments",
    ):
        check_parameters(with_changes(base, jrte_sentiment__baseline__trainer__num_train_epochz=3), base)
    with pytest.raises(
        ParameterError,
        match=r"jrte_sentiment\.level2\.config\.hidden_dropout_prb .*not a field of transformers\.XLMRobertaConfig; "
        r"did you mean 'jrte_sentiment\.level2\.config\.hidden_dropout_prob'",
    ):
        check_parameters(with_changes(base, jrte_sentiment__level2__config__hidden_dropout_prb=0.3), base)


def tiny_model(folder: Path, model_type: str) -> Path:
    """A model folder as far as its config class goes: a config.json naming the architecture (no weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(f'{{"model_type": "{model_type}"}}')
    return folder


def test_jrte_model_config_blocks_take_the_configured_models_own_config_fields(base, tmp_path, caplog):
    """The config block was checked against XLM-R's fields whatever the model: DistilBERT's own dropout key
    (seq_classif_dropout) was refused, pointing at XLMRobertaConfig."""
    from qeu_kedro.models import config_class

    distilbert = tiny_model(tmp_path / "distilbert", "distilbert")
    models = {"jrte_sentiment.level2_base_model": config_class(distilbert)}
    assert models["jrte_sentiment.level2_base_model"] == "transformers:DistilBertConfig"
    check_parameters(
        with_changes(base, jrte_sentiment__soft_labels__config__seq_classif_dropout=0.3),
        base,
        model_config_class=models.get,
    )
    with pytest.raises(
        ParameterError,
        match=r"jrte_sentiment\.level2\.config\.seq_clasif_dropout .*not a field of transformers\.DistilBertConfig, "
        r"the config class of the model 'jrte_sentiment\.level2_base_model'; "
        r"did you mean 'jrte_sentiment\.level2\.config\.seq_classif_dropout'",
    ):
        check_parameters(
            with_changes(base, jrte_sentiment__level2__config__seq_clasif_dropout=0.3),
            base,
            model_config_class=models.get,
        )
    # the hub environment's BERT: its own class (the same dropout fields as XLM-R's)
    assert config_class(tiny_model(tmp_path / "bert", "bert")) == "transformers:BertConfig"
    # a key conf/base gives every model (the dropouts) that DistilBERT's class has no field for: the model
    # would keep it unused, so the run says so (it cannot be left out: conf/base gives it)
    with caplog.at_level("WARNING", logger="qeu_kedro.parameters"):
        check_parameters(base, base, model_config_class=models.get)
    assert (
        "jrte_sentiment.level2.config.hidden_dropout_prob (the parameters): not a field of "
        "transformers.DistilBertConfig, the config class of the model 'jrte_sentiment.level2_base_model': "
        "the model ignores it"
    ) in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="qeu_kedro.parameters"):
        check_parameters(base, base, model_config_class=lambda name: "transformers:BertConfig")
    assert "the model ignores it" not in caplog.text  # BERT has those fields
    # a model not on this machine: its own class is not known; the key is checked against the default
    # model's class (a typo went through with a warning, and from_pretrained keeps a typo unused)
    with pytest.raises(
        ParameterError,
        match=r"hidden_dropout_prb .*not a field of transformers\.XLMRobertaConfig \(the default model's: the model "
        r"of 'jrte_sentiment\.level2_base_model' is not on this machine yet.*did you mean "
        r"'jrte_sentiment\.level2\.config\.hidden_dropout_prob'",
    ):
        check_parameters(
            with_changes(base, jrte_sentiment__level2__config__hidden_dropout_prb=0.3),
            base,
            model_config_class=lambda name: None,
        )
    # no config.json, one that is no JSON object, or an architecture transformers does not know: nothing known
    (tmp_path / "odd").mkdir()
    assert config_class(tmp_path / "odd") is None
    (tmp_path / "odd" / "config.json").write_text("[1, 2]")
    assert config_class(tmp_path / "odd") is None
    assert config_class(tiny_model(tmp_path / "custom", "my-own-architecture")) is None


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("ridge_analysis__alpha", -5, "alpha"),
        ("ridge_analysis__alpha", "five", "alpha"),
        ("ridge_analysis__alpha", 0, "alpha"),
        ("ridge_analysis__test_size", 1.0, "less than 1"),
        ("ridge_analysis__test_size", 0, "greater than 0"),
        ("ridge_analysis__top_k", 0, "greater than or equal to 1"),
        ("ridge_analysis__top_k", 2.5, "integer"),
        ("bge_finetune__trainer__per_device_train_batch_size", 0, "greater than or equal to 1"),
        ("bge_finetune__trainer__max_steps", 0, "greater than or equal to 1"),
        ("bge_finetune__split__by", "rows", "'pair' or 'positive'"),
        ("ridge_analysis__group_by", "movie", "movie_id"),
        ("movie_embedding__encoder__quantize", "int4", "'none' or 'int8'"),
        ("ridge_analysis__fit_intercept", "yes", "boolean"),
        ("ridge_analysis__schema", ["M", "F"], "expected a block of keys"),
        ("ridge_analysis__user_features", ["zip_code"], "'age', 'gender' or 'occupation'"),
        ("ridge_analysis__rating_step", 0.25, "0.5 or 1"),
        ("alpaca_sft__train__objective", "dpo", "'sft' or 'preference'"),
        ("alpaca_sft__train__preference__beta", 0, "greater than 0"),
    ],
)
def test_types_and_ranges_are_checked(base, key, value, words):
    with pytest.raises(ParameterError) as info:
        check_parameters(with_changes(base, **{key: value}), base)
    message = str(info.value)
    assert key.replace("__", ".") in message
    assert words in message


def test_alpha_accepts_auto_and_positive_numbers(base):
    for alpha in ("auto", 0.5, 5, 1e-6):
        check_parameters(with_changes(base, ridge_analysis__alpha=alpha), base)


def test_user_features_and_rating_step_take_the_20m_settings(base):
    check_parameters(with_changes(base, ridge_analysis__user_features=[], ridge_analysis__rating_step=0.5), base)
    check_parameters(with_changes(base, ridge_analysis__user_features=["age"]), base)


def test_blocks_not_used_by_the_run_are_not_checked(base):
    bad = with_changes(base, alpaca_sft__train__trainer__max_steps=0)
    check_parameters(bad, base, blocks={"ridge_analysis"})
    with pytest.raises(ParameterError, match="alpaca_sft.train.trainer.max_steps"):
        check_parameters(bad, base, blocks={"alpaca_sft"})


def test_open_mappings_take_any_label(base):
    labels = base["jrte_sentiment"]["level1"]["mapping"]["labels"]
    check_parameters(with_changes(base, jrte_sentiment__level1__mapping__labels={**labels, "LABEL_2": "normal"}), base)


def test_the_loss_kwargs_take_the_loss_classs_own_keys(base):
    # checked against the loss class by bge_finetune.build_loss (tests/pipelines/bge_finetune/test_training.py)
    tuned = {
        "directions": ["query_to_doc", "doc_to_query"],
        "hardness_mode": "in_batch_negatives",
        "hardness_strength": 9,
    }
    check_parameters(with_changes(base, bge_finetune__loss__kwargs=tuned), base)


def test_a_key_set_to_null_in_an_environment_is_reported_missing(base):
    with pytest.raises(ParameterError, match=r"ridge_analysis\.schema \(the parameters\): expected a block"):
        check_parameters(with_changes(base, ridge_analysis__schema=None), base)


# ---- through Kedro: the hook, layered files, the CLI names ------------------------------------


def outputs_written(project: Path) -> list[str]:
    return sorted(
        str(p.relative_to(project)) for p in (project / "data").rglob("*") if p.is_file() and "01_raw" not in p.parts
    )


@pytest.mark.slow
def test_hook_refuses_a_typo_in_params_before_any_node_runs(project):
    with pytest.raises(ParameterError, match=r"ridge_analysis\.alpah \(from --params\).*did you mean"):
        run_kedro(project, params={"ridge_analysis": {"alpah": 1.0}}, pipeline_names=["ridge_analysis"])
    assert outputs_written(project) == []


@pytest.mark.slow
def test_hook_names_the_file_of_a_bad_value_and_layered_partial_blocks_work(project):
    local = project / "conf" / "local" / "parameters_ridge_analysis.yml"
    local.write_text("ridge_analysis:\n  alpha: five\n")
    with pytest.raises(
        ParameterError, match=r"ridge_analysis\.alpha \(in .*conf/local/parameters_ridge_analysis\.yml\)"
    ):
        run_kedro(project, pipeline_names=["ridge_analysis"])
    assert outputs_written(project) == []
    # a partial block (one key) merges onto conf/base: every other key keeps its default
    local.write_text("ridge_analysis:\n  top_k: 5\n")
    merged = load_config(project, None, "parameters")["ridge_analysis"]
    assert merged["top_k"] == 5 and merged["test_size"] == 0.2
    check_parameters({"ridge_analysis": merged}, base_parameters(project / "conf"))


@pytest.mark.slow
def test_unknown_env_lists_the_environments(project):
    with pytest.raises(ValueError, match=r"Unknown configuration environment 'movielen'.*Did you mean 'movielens'"):
        run_kedro(project, env="movielen", pipeline_names=["ridge_analysis"])


@pytest.mark.slow
def test_unknown_pipeline_lists_the_pipelines(project):
    with pytest.raises(
        ValueError, match=r"Unknown pipeline 'ridge_analisys'.*Did you mean 'ridge_analysis'.*Pipelines: alpaca_sft"
    ):
        run_kedro(project, pipeline_names=["ridge_analisys"])


@pytest.mark.slow
def test_a_run_checks_the_model_config_block_against_the_catalogs_model(project, tmp_path):
    """conf/local points Level 2's base model at a DistilBERT folder: its own seq_classif_dropout is taken (the
    run was refused, the key checked against XLMRobertaConfig), and a typo of it is refused naming its class."""
    model = tiny_model(tmp_path / "distilbert", "distilbert")
    local = project / "conf" / "local"
    (local / "catalog.yml").write_text(
        "jrte_sentiment.level2_base_model:\n"
        "  type: qeu_kedro.datasets.hf_sequence_classifier.HFSequenceClassifierDataset\n"
        f"  model: {model}\n"
    )
    params = local / "parameters_jrte_sentiment.yml"
    params.write_text("jrte_sentiment:\n  level2:\n    config:\n      seq_classif_dropout: 0.3\n")
    run_kedro(project, pipeline_names=["jrte_sentiment"], node_names=["jrte_sentiment.check_pn"])
    params.write_text("jrte_sentiment:\n  level2:\n    config:\n      seq_clasif_dropout: 0.3\n")
    with pytest.raises(
        ParameterError,
        match=r"seq_clasif_dropout \(in .*conf/local/parameters_jrte_sentiment\.yml\)"
        r": unknown key, not a field of transformers\.DistilBertConfig",
    ):
        run_kedro(project, pipeline_names=["jrte_sentiment"], node_names=["jrte_sentiment.check_pn"])


def test_alpha_auto_is_refused_before_the_run_where_the_ratings_are_partitioned(base):
    """The dask environment's select_alpha node refused auto only after the embeddings were computed and saved."""
    auto = with_changes(base, ridge_analysis__alpha="auto")
    with pytest.raises(
        ParameterError,
        match=r"ridge_analysis\.alpha \(the parameters\): auto is not available on partitioned ratings.*set ridge_analysis\.alpha to a number",
    ):
        check_parameters(auto, base, partitioned=lambda name: name == "ratings")
    check_parameters(auto, base, partitioned=lambda name: False)  # in memory: auto is fine
    check_parameters(base, base, partitioned=lambda name: True)  # a number on partitions: fine
    check_parameters(auto, base, blocks={"bge_finetune"}, partitioned=lambda name: True)  # ridge not run


@pytest.mark.slow
def test_hook_refuses_alpha_auto_in_the_dask_environment_before_any_node_runs(project):
    with pytest.raises(
        ParameterError, match=r"ridge_analysis\.alpha \(from --params\): auto is not available on partitioned"
    ):
        run_kedro(project, env="dask", params={"ridge_analysis": {"alpha": "auto"}}, pipeline_names=["ridge_analysis"])
    assert outputs_written(project) == []
