"""The README's headline numbers are the numbers of the results they come from.

Each lesson row quotes a few results; each is read out of the README and compared with the JSON
record that a script wrote (``weights/*.json``, ``notebooks/results/*.json``). A number changed in
a re-run, or a README edited by hand, fails here.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_row(number):
    """The README lesson table's row for lesson ``number`` ("03")."""
    match = re.search(rf"^\| {number} \|.*$", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert match, f"no README row for lesson {number}"
    return match.group(0)


def record(relative_path):
    return json.loads((ROOT / relative_path).read_text(encoding="utf-8"))


def quoted(row, pattern):
    """The numbers that ``pattern``'s groups capture in ``row``, as floats."""
    match = re.search(pattern, row)
    assert match, f"the README row no longer says {pattern!r}: {row}"
    return [float(group.replace(",", "")) for group in match.groups()]


def bleu_means():
    means = {}
    for run in record("notebooks/results/04_score_ablation.json")["runs"]:
        means.setdefault(run["variant"], []).append(run["bleu"])
    return {variant: float(np.mean(scores)) for variant, scores in means.items()}


def test_lesson_01_sequence_accuracy_at_length_20():
    without, with_attention = quoted(readme_row("01"), r"reversing 20 tokens it gets (\d+) % of "
                                                       r"sequences right, the same model with "
                                                       r"attention (\d+) %")
    runs = {run["attention"]: run for run in
            record("notebooks/results/01_context_size_sweep.json")["runs"] if run["units"] == 64}
    assert without == round(100 * runs[None]["sequence_accuracy"]["20"])
    assert with_attention == round(100 * runs["bahdanau"]["sequence_accuracy"]["20"])


def translator_scores():
    models = record("weights/translator_results.json")["models"]
    return {name: (round(models[name]["bleu"], 1), round(models[name]["chrf"], 1))
            for name in ("bahdanau", "no_attention")}


def test_lesson_03_bleu_and_chrf_with_and_without_attention():
    numbers = quoted(readme_row("03"), r"(\d+\.\d) BLEU / (\d+\.\d) chrF with attention vs "
                                       r"(\d+\.\d) / (\d+\.\d) without")
    scores = translator_scores()
    assert numbers == [*scores["bahdanau"], *scores["no_attention"]]


def test_lesson_04_ablation_ranges():
    row = readme_row("04")
    means = bleu_means()
    low, high = quoted(row, r"additive (\d+)–(\d+) BLEU")
    assert all(low <= means[variant] <= high for variant in ("bahdanau", "concat"))
    low, high = quoted(row, r"unscaled dot and general (\d+)–(\d+)")
    assert all(low <= means[variant] <= high for variant in ("dot", "general"))
    (scaled_general,) = quoted(row, r"general divided by √d (\d+\.\d)")
    assert scaled_general == round(means["scaled-general"], 1)


def test_lesson_07_one_head_fails_two_to_eight_succeed():
    row = readme_row("07")
    assert "one head cannot follow two relations, two to eight can" in row
    accuracy = {}
    for run in record("notebooks/results/07_heads_ablation.json")["runs"]:
        accuracy.setdefault(run["heads"], []).append(run["test_accuracy"])
    assert max(accuracy[1]) < 0.8
    assert all(min(accuracy[heads]) >= 0.99 for heads in (2, 4, 8))


def test_lesson_08_transformer_scores_and_complexity():
    row = readme_row("08")
    bleu, chrf, rnn_bleu, rnn_chrf = quoted(row, r"(\d+\.\d) BLEU / (\d+\.\d) chrF against "
                                                 r"(\d+\.\d) / (\d+\.\d)")
    transformer = record("weights/transformer_results.json")
    assert [bleu, chrf] == [round(transformer["bleu"], 1), round(transformer["chrf"], 1)]
    assert [rnn_bleu, rnn_chrf] == list(translator_scores()["bahdanau"])

    complexity = record("notebooks/results/08_complexity.json")
    crossover, depth = quoted(row, r"slower than a GRU beyond n ≈ ([\d,]+) at d = (\d+)")
    assert crossover == round(complexity["crossover"]["self_attention_vs_gru_measured"], -2)
    assert depth == complexity["config"]["d"]
    gigabytes, length = quoted(row, r"n × n scores (\d+) GB at n = ([\d,]+)")
    index = complexity["lengths"].index(int(length))
    assert gigabytes == pytest.approx(complexity["score_tensor_mb"][index] / 1024)


def test_lesson_09_validation_loss_cost_and_cache_speed_up():
    training = record("notebooks/results/09_gpt_training.json")
    benchmark = record("notebooks/results/09_kv_cache_benchmark.json")
    speed_up = {row["new_tokens"]: row["speedup_wall"] for row in benchmark["rows"]}
    loss, speed_up_256 = quoted(readme_row("09"), r"validation loss (\d\.\d\d) nats per "
                                                  r"character .* (\d\.\d) times faster at 256")
    assert loss == round(training["validation_loss"], 2)
    assert speed_up_256 == round(speed_up[256], 1)

    readme = (ROOT / "README.md").read_text()
    minutes, loss_again = quoted(readme, r"scripts/train_gpt.py`, (\d+) CPU minutes; validation "
                                         r"loss (\d\.\d\d) nats")
    assert [minutes, loss_again] == [round(training["total_cpu_minutes"]), loss]
    (script_minutes,) = quoted(readme, r"\| `scripts/train_gpt.py` \|.*\| (\d+) CPU minutes \|")
    assert script_minutes == minutes
    cpu, wall = quoted(readme, r"\| `benchmarks/kv_cache_speed.py --repeats 5` \|.*\| "
                               r"(\d+\.\d) CPU minutes \((\d+) wall minutes\) \|")
    assert [cpu, wall] == [round(benchmark["cpu_seconds"] / 60, 1),
                           round(benchmark["wall_seconds"] / 60)]


def test_lesson_10_cache_figures_ablation_and_extrapolation():
    from course_lib.generation import kv_cache_bytes

    row = readme_row("10")
    mha, gqa = quoted(row, r"(\d+\.\d) GB for a 32-layer, d = 4,096 model at 32k tokens, "
                           r"(\d\.\d) GB with 8 KV heads")
    assert [mha, gqa] == [round(kv_cache_bytes(32, 4096, 32, 32_768, num_key_value_heads=heads,
                                               dtype="bfloat16") / 1e9, 1) for heads in (32, 8)]

    ablation = record("notebooks/results/10_long_context_ablation.json")
    runs = {run["name"]: run for run in ablation["variants"]}
    rope, learned, seed_gap, alibi, gqa2, mqa1, window = quoted(
        row, r"RoPE (\d\.\d{3}) nats per character against (\d\.\d{3}) for learned positions "
             r"\(seed gap (0\.\d{4})\), ALiBi (\d\.\d{3}), 2 or 1 KV heads (\d\.\d{3}) and "
             r"(\d\.\d{3}), a window of 16 (\d\.\d{3})")
    assert [rope, learned, alibi, gqa2, mqa1, window] == [
        round(runs[name]["validation_loss"], 3)
        for name in ("rotary", "learned", "alibi", "gqa2", "mqa1", "window16")]
    assert seed_gap == round(abs(runs["learned"]["validation_loss"]
                                 - runs["learned_seed2"]["validation_loss"]), 4)

    def mean_loss(name, begin, end):
        return round(float(np.mean(runs[name]["loss_by_position"]["256"][begin:end])), 2)

    past, rope_far, alibi_far, windowed_far = quoted(
        row, r"learned positions reach (\d\.\d\d) past position 63, RoPE (\d\.\d\d) on "
             r"positions 128–255, ALiBi (\d\.\d\d) and RoPE with a window (\d\.\d\d)")
    assert [past, rope_far, alibi_far, windowed_far] == [
        mean_loss("learned", 64, 256), mean_loss("rotary", 128, 256),
        mean_loss("alibi", 128, 256), mean_loss("rotary_window16", 128, 256)]

    cpu, wall = quoted((ROOT / "README.md").read_text(),
                       r"\| `scripts/long_context_ablation.py` \|.*\| (\d+) CPU minutes "
                       r"\((\d+) wall minutes\) \|")
    assert [cpu, wall] == [round(ablation["cpu_minutes"]), round(ablation["wall_minutes"])]
def test_lesson_11_memory_crossover_and_recall():
    row = readme_row("11")
    benchmark = record("notebooks/results/11_efficient_attention_benchmark.json")
    percent, length = quoted(row, r"in (\d+) % of the materialised peak memory at n = ([\d,]+)")
    index = benchmark["lengths"].index(int(length))
    memory = benchmark["peak_memory_mb"]
    assert percent == round(100 * memory["tiled"][index] / memory["exact"][index])
    (crossover,) = quoted(row, r"linear attention faster than exact from n = ([\d,]+)")
    assert crossover == benchmark["crossover"]["linear"]["wall"]

    recall = record("notebooks/results/11_recall.json")
    fewest, most, exact, linear_first, linear_last = quoted(
        row, r"associative recall of (\d+) to (\d+) key → value pairs: exact attention (\d+) % "
             r"throughout, linear attention from (\d+) % down to (\d+) %")
    assert [fewest, most] == [min(recall["pairs"]), max(recall["pairs"])]

    def percent_of(model, pairs):
        return round(100 * np.mean([run["test_accuracy"] for run in recall["runs"]
                                    if run["model"] == model and run["pairs"] == pairs]))

    assert all(percent_of("softmax", pairs) == exact for pairs in recall["pairs"])
    assert [linear_first, linear_last] == [percent_of("linear", fewest), percent_of("linear", most)]


def test_lesson_12_accuracies_and_forecast_errors():
    row = readme_row("12")
    runs = record("notebooks/results/12_digits_classifiers.json")["runs"]
    for pattern, model in ((r"ViT on the 8 × 8 digits \((\d+\.\d) ± (\d+\.\d) %", "vit"),
                           (r"ties an MLP \((\d+\.\d) ± (\d+\.\d) %\)", "mlp"),
                           (r"loses to a CNN \((\d+\.\d) ± (\d+\.\d) %\)", "cnn")):
        mean, spread = quoted(row, pattern)
        accuracies = 100 * np.array([run["test_accuracy"] for run in runs
                                     if run["model"] == model])
        assert [mean, spread] == [round(accuracies.mean(), 1), round(accuracies.std(ddof=1), 1)]
    forecasts = record("notebooks/results/12_sunspot_forecasts.json")
    table = forecasts["summary"]

    def seeds(model):
        rmse = np.array([run["rmse"] for run in forecasts["runs"] if run["model"] == model])
        return [round(rmse.mean(), 1), round(rmse.std(ddof=1), 1)]

    assert quoted(row, r"attention RMSE (\d+\.\d) ± (\d+\.\d)") == seeds("attention")
    (persistence,) = quoted(row, r"persistence (\d+\.\d)")
    assert persistence == pytest.approx(table["persistence"]["rmse_mean"], abs=0.051)
    (linear,) = quoted(row, r"least-squares AR (\d+\.\d)")
    assert linear == round(table["linear_autoregression"]["rmse_mean"], 1)
    assert quoted(row, r"a GRU (\d+\.\d) ± (\d+\.\d)") == seeds("gru")
    (peak,) = quoted(row, r"its weight peaks at lag (\d+)")
    assert peak == 1 + int(np.argmax(forecasts["lag_weights_mean"]))


def test_lesson_13_glimpse_accuracies_variance_and_attention_accounts():
    row = readme_row("13")
    glimpses = record("notebooks/results/13_glimpse_attention.json")

    def accuracy(model):
        values = 100 * np.array([run["test_accuracy"] for run in glimpses["runs"]
                                 if run["model"] == model])
        return [round(values.mean(), 1), round(values.std(ddof=1), 1)]

    for pattern, model in ((r"soft attention (\d+\.\d) ± (\d+\.\d) %", "soft"),
                           (r"REINFORCE (\d+\.\d) ± (\d+\.\d) %", "reinforce"),
                           (r"Gumbel-softmax (\d+\.\d) ± (\d+\.\d) %", "gumbel")):
        assert quoted(row, pattern) == accuracy(model)
    (ratio,) = quoted(row, r"reading (\d+\.\d) times fewer multiply-adds")
    costs = glimpses["summary"]
    assert ratio == round(costs["soft"]["multiply_adds"]["test"]
                          / costs["reinforce"]["multiply_adds"]["test"], 1)
    statistics = [run["gradient_statistics"] for run in glimpses["runs"]
                  if run["model"] == "reinforce"]

    def mean(epoch, key):
        return np.mean([entry[epoch][key] for entry in statistics])

    (signal_ratio,) = quoted(row, r"without a baseline ([\d,]+) times its signal")
    assert signal_ratio == round(mean("0", "reinforce_no_baseline_variance")
                                 / mean("0", "exact_norm"), -2)
    (baseline_ratio,) = quoted(row, r"divides it by (\d+) after one epoch")
    assert baseline_ratio == round(mean("1", "reinforce_no_baseline_variance")
                                   / mean("1", "reinforce_baseline_variance"))
    assert mean("20", "reinforce_no_baseline_variance") < 1.2 * mean(
        "20", "reinforce_baseline_variance")  # "hardly at the end"

    accounts = record("notebooks/results/13_attention_explanations.json")["summary"]
    low, high, low_loo, high_loo = quoted(row, r"mean Kendall τ (\d\.\d+)–(\d\.\d+) and "
                                               r"(\d\.\d+)–(\d\.\d+)")
    taus = accounts["attention"]["mean_tau"]
    assert [low, high] == [round(min(taus["attention/gradient_times_input"]), 2),
                           round(max(taus["attention/gradient_times_input"]), 2)]
    assert [low_loo, high_loo] == [round(min(taus["attention/leave_one_out"]), 2),
                                   round(max(taus["attention/leave_one_out"]), 2)]
    fewest, most = quoted(row, r"changes (\d+)–(\d+) % of the predictions")
    flips = accounts["attention"]["counterfactual"]["permuted_flip_rate"]
    assert [fewest, most] == [round(100 * min(flips)), round(100 * max(flips))]
    for pattern, pooling in ((r"as accurate \((\d+\.\d) ± (\d+\.\d) %", "uniform"),
                             (r"against (\d+\.\d) ± (\d+\.\d) %\)", "attention")):
        row_accuracy = accounts[pooling]["test_accuracy"]
        assert quoted(row, pattern) == [round(100 * row_accuracy["mean"], 1),
                                        round(100 * row_accuracy["std"], 1)]
