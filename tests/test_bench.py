"""The benchmark code behind the README's numbers, on the toy corpus and the tiny trained runs (seconds each)."""

import argparse
import json

import numpy as np
import pytest

from conftest import TINY_DC_ARGS
from benchmarks import quality
from benchmarks.__main__ import main as bench_main
from speechsep.config import EMBEDDING_COUNT_METHODS, ExperimentConfig
from speechsep.data import testset
from speechsep.experiments import EXPERIMENTS, comparison_rows
from speechsep.training.runner import ExperimentRun


def test_bench_data_row_is_consistent_and_the_scratch_dataset_is_deleted(tmp_path, capsys):
    row = bench_main(["data", "--corpus", "toy", "--mixtures", "10", "--shard-size", "5", "--quiet",
                      "--scratch", str(tmp_path)])
    assert (row["corpus"], row["mixtures"]) == ("toy", 10)
    assert row["mixtures_per_second"] == pytest.approx(row["mixtures"] / row["seconds"])
    assert row["disk_mb"] > 0 and row["peak_rss_mb"] > 0
    assert not any(tmp_path.iterdir())
    assert f"{row['mixtures_per_second']:.1f}" in capsys.readouterr().out  # the printed table shows the row


@pytest.mark.slow  # uses trained_runs
def test_bench_separate_times_every_readout_of_a_run(trained_runs, capsys):
    rows = bench_main(["separate", "--model", str(trained_runs / "deepclustering"), "--corpus", "toy",
                       "--repeats", "1"])
    assert [row["readout"] for row in rows] == ["kmeans", "meanshift"]
    for row in rows:
        assert row["model"] == "deepclustering" and row["seconds"] > 0
        assert row["rtf"] == pytest.approx(row["seconds"] / 3.0)  # a 3 s mixture (toy utterances joined)
        assert row["first_call_seconds"] > 0 and row["load_seconds"] > 0 and row["import_seconds"] >= 0
    assert f"load: {rows[0]['load_seconds']:.2f} s" in capsys.readouterr().out  # the run's load time, in each row
    (mask_row,) = bench_main(["separate", "--model", str(trained_runs / "feedforward"), "--corpus", "toy",
                              "--repeats", "1"])
    assert mask_row["readout"] == "mask"


@pytest.mark.slow  # uses trained_runs
def test_bench_meanshift_counts_speakers_per_setting(trained_runs, capsys):
    result = bench_main(["meanshift", "--model", str(trained_runs / "deepclustering"), "--corpus", "toy",
                         "--mixtures", "2", "--bandwidths", "0.1", "0.2", "--min-fractions", "0.1"])
    rows = result["sweep"]
    assert [(row["bandwidth"], row["min_cluster_fraction"]) for row in rows] == [(0.1, 0.1), (0.2, 0.1)]
    for row in rows:
        counts = {key: value for key, value in row.items() if key.endswith("-spk")}
        assert {"valid 1-spk", "valid 2-spk", "test 1-spk", "test 2-spk", "test 3-spk"} <= set(counts)
        assert all(value in (0.0, 0.5, 1.0) for value in counts.values())  # right on 0, 1 or 2 of 2 mixtures
        assert row["ms_per_3s"] > 0
    # a count-confusion matrix per counting method and split: true K (rows) x estimated K, 2 mixtures per K
    assert result["talkers"] == [1, 2, 3]  # a run trained on 2 talkers: 1-3 by default
    assert set(result["confusions"]) == {f"{method} {split}" for method in EMBEDDING_COUNT_METHODS for split in ("valid", "test")}
    test = np.asarray(result["confusions"]["eigengap test"]["matrix"])
    assert test.shape == (3, 3) and list(test.sum(axis=1)) == [2, 2, 2]
    out = capsys.readouterr().out
    assert "eigengap (its defaults, chosen on validation), test mixtures" in out
    assert f"Counting with {trained_runs / 'deepclustering'}: best.keras of the run" in out  # not the last weights
    # every setting of every method is scored; each method's matrices are those of its setting chosen on validation
    settings = [(row["method"], row["params"]) for row in result["counting"]]
    assert ("eigenvalues", {"threshold": 0.1}) in settings and ("silhouette", {"min_silhouette": 0.3}) in settings
    assert ("meanshift", {"bandwidth": 0.2}) in settings
    for method, params in result["chosen"].items():
        row = next(r for r in result["counting"] if r["method"] == method and r["params"] == params)
        assert row["matrices"]["test"] == result["confusions"][f"{method} test"]["matrix"]
    # the best pair on validation, printed as the flags that make it a run's default
    best = result["best"]
    assert best["params"] == result["chosen"][best["method"]]
    assert f"--count-method {best['method']}" in out.split("Best on validation")[-1]
    # the Gram spectrum of each set: k_max + 1 eigenvalues, largest first, summing to at most 1; one share per talker
    for name, row in result["spectra"].items():
        talkers = int(name.split()[-1].split("-")[0])
        assert len(row["lambda"]) == 4 and row["lambda"] == sorted(row["lambda"], reverse=True)
        assert sum(row["lambda"]) <= 1 + 1e-6 and len(row["share"]) == talkers
        low, median, high = row["participation"]
        assert 1 - 1e-6 <= low <= median <= high  # 1: every bin along one direction
    assert result["spectra"]["test 1-spk"]["share"] == [1.0]
    assert "Gram spectrum" in out


def test_the_gram_spectrum_of_orthogonal_talkers_is_their_share_of_the_bins():
    from benchmarks.meanshift import gram_spectrum_table

    rng = np.random.default_rng(0)
    active = np.ones((10, 20), bool)
    labels = rng.choice(3, size=(10, 20), p=[0.5, 0.3, 0.2])  # each bin's talker
    embeddings = np.eye(6, dtype=np.float32)[labels]  # [T, F, D]: one orthogonal direction per talker
    shares = sorted((np.bincount(labels.ravel()) / labels.size).tolist(), reverse=True)
    table = gram_spectrum_table({"test 3-spk": (3, [(embeddings[active], 10, shares)] * 3)}, 3)
    np.testing.assert_allclose(table["test 3-spk"]["lambda"], shares + [0.0], atol=1e-6)
    np.testing.assert_allclose(table["test 3-spk"]["participation"], [1 / np.sum(np.square(shares))] * 3, rtol=1e-6)
    # merged talkers (one shared direction for the second and third) leave the third eigenvalue at 0
    merged = np.eye(6, dtype=np.float32)[np.minimum(labels, 1)]
    table = gram_spectrum_table({"test 3-spk": (3, [(merged[active], 10, shares)])}, 3)
    counts = np.bincount(labels.ravel()) / labels.size
    np.testing.assert_allclose(table["test 3-spk"]["lambda"], sorted([counts[0], counts[1] + counts[2]], reverse=True)
                               + [0.0, 0.0], atol=1e-6)


def test_a_counting_setting_ranks_by_the_targets_it_meets_then_by_its_mean():
    from benchmarks.meanshift import validation_score

    lone_and_pairs = validation_score({1: 1.0, 2: 0.94, 3: 0.0})  # meets K=1 and K=2
    half_everywhere = validation_score({1: 0.9, 2: 0.5, 3: 0.7})  # a higher mean, meets none
    assert lone_and_pairs == (2, pytest.approx(0.6467, abs=1e-4)) and half_everywhere[0] == 0
    assert lone_and_pairs > half_everywhere
    assert validation_score({1: 1.0, 2: None, 3: 0.5}) == (1, 0.75)  # no mixture of K: left out


@pytest.mark.slow  # uses trained_runs
def test_bench_softmask_scores_binary_then_each_beta_on_validation_speakers(trained_runs, capsys):
    rows = bench_main(["softmask", "--model", str(trained_runs / "deepclustering"), "--corpus", "toy",
                       "--mixtures", "3", "--betas", "1e4", "3"])
    assert [row["beta"] for row in rows] == [None, 3.0, 1e4]
    binary, soft, sharp = rows
    assert sharp["sdr"] == pytest.approx(binary["sdr"], abs=0.05)  # a very sharp soft mask is the binary one
    assert soft["sdr"] != pytest.approx(binary["sdr"], abs=1e-3)
    assert "valid speakers" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench_main(["softmask", "--model", str(trained_runs / "feedforward"), "--corpus", "toy"])


def test_quality_reuses_the_dc_network_only_for_readout_rows():
    reused = {name for name in comparison_rows() if quality.reuses_dc_network(name)}
    # the README: mean-shift only reads the network out differently; the BLSTM + DC-loss row keeps the
    # original study's objective, so it trains its own network
    assert reused == {"meanshift"}
    for name in reused:
        experiment, changes = comparison_rows()[name]
        assert experiment.model == EXPERIMENTS[quality.DC_NETWORK_ROW].model and not changes


@pytest.mark.parametrize("budget", ["mask", "dc"])
def test_quality_training_argv_is_accepted_and_sets_the_budget(budget, tmp_path):
    args = argparse.Namespace(timit="corpus-folder", corpus_root=["more-a", "more-b"], dc_minutes=30.0,
                              mask_minutes=4.0, steps_per_epoch=150, test_mixtures=100,
                              seed=3)  # the defaults of `bench quality`, another seed, two extra corpora
    experiment = next(e for e in EXPERIMENTS.values() if e.budget == budget)
    run = ExperimentRun(experiment.name, None, None, quality.training_argv(args, budget, tmp_path / "run"))
    config = run.config
    assert config.minutes == (30.0 if budget == "dc" else 4.0)
    assert config.dynamic_mixing and config.steps_per_epoch == 150 and config.seed == 3
    assert run.args.timit == "corpus-folder" and run.args.test_mixtures == 100
    assert run.args.corpus_root == ["more-a", "more-b"]  # every row trains on every corpus
    assert run.out == (tmp_path / "run").resolve()


def test_quality_step_budget_replaces_the_dc_rows_minutes(tmp_path):
    args = argparse.Namespace(timit="corpus-folder", corpus_root=None, dc_minutes=30.0, dc_steps=1000,
                              mask_minutes=4.0, steps_per_epoch=150, test_mixtures=100, seed=0)
    dc = ExperimentRun("deepclustering", None, None, quality.training_argv(args, "dc", tmp_path / "dc")).config
    assert (dc.minutes, dc.epochs, dc.steps_per_epoch) == (None, 7, 150)  # 1000 steps: 7 whole epochs of 150
    assert quality.dc_budget(args) == "1050 optimizer steps"
    mask = ExperimentRun("feedforward", None, None, quality.training_argv(args, "mask", tmp_path / "ff")).config
    assert (mask.minutes, mask.epochs) == (4.0, 1000)  # the mask networks keep their minutes
    args.dc_steps = None
    assert quality.dc_budget(args) == "30 min"
    args.dc_steps = 0
    with pytest.raises(ValueError, match="--dc-steps"):
        quality.training_argv(args, "dc", tmp_path / "dc")
    with pytest.raises(ValueError, match="--dc-steps"):
        quality.dc_budget(args)


def test_a_trained_row_is_scored_on_the_tables_mixtures_and_keeps_its_own_split(toy_dataset, tmp_path):
    """bench quality trains on several corpora but scores every row on --timit's test mixtures."""
    run = ExperimentRun("deepclustering", None, None,
                        TINY_DC_ARGS + ["--data", str(toy_dataset), "--out", str(tmp_path / "run")])
    with pytest.raises(ValueError, match="after train"):
        run.use_test_set(None)
    run.train()
    split = json.loads((tmp_path / "run" / "run.json").read_text())["data"]["splits"]
    records = testset.from_dataset(toy_dataset, 1).records
    with pytest.raises(ValueError, match="trained on test speaker"):  # a training speaker, corpus unknown
        run.use_test_set(testset.TestSet(records, [split["train"][0]], "with a training speaker"))
    table = testset.TestSet(records, split["test"], "1 test mixture")  # 1, where the run's own test set has 2
    run.use_test_set(table)
    results = run.evaluate()
    assert results["overall"]["mixtures"] == 1 and results["test_speakers"] == table.speakers
    assert json.loads((tmp_path / "run" / "run.json").read_text())["data"]["splits"] == split


@pytest.mark.slow  # uses trained_runs
def test_quality_reuse_dc_network_scores_another_readout(trained_runs, toy_dataset, tmp_path):
    test = testset.from_dataset(toy_dataset, 2)
    results = quality.reuse_dc_network(trained_runs / "deepclustering", tmp_path / "meanshift", "meanshift",
                                       "meanshift", test.records, test.speakers)
    assert json.loads((tmp_path / "meanshift" / "results.json").read_text()) == json.loads(json.dumps(results))
    config = ExperimentConfig.load(tmp_path / "meanshift" / "config.json")
    trained = ExperimentConfig.load(trained_runs / "deepclustering" / "config.json")
    assert config == trained.replace(experiment="meanshift", readout="meanshift")  # only the readout changed
    overall = results["overall"]
    assert overall["mixtures"] == 2 and 0 <= overall["speaker_count_accuracy"] <= 1
    for key in ("snr_improvement", "si_sdr_improvement", "sdr_improvement", "accuracy_pit"):
        assert np.isfinite(overall[key]["mean"]), key
    with pytest.raises(ValueError, match="train the deepclustering row first"):
        quality.reuse_dc_network(tmp_path / "missing", tmp_path / "bidiloss", "bidiloss", "pca_sign",
                                 test.records, test.speakers)


def test_a_corpus_option_replaces_the_benches_default_corpus():
    from benchmarks import SHARED_SAMPLE
    from benchmarks.__main__ import parse_args

    alone = parse_args(["meanshift", "--model", "m", "--corpus-root", "R"])
    assert (alone.timit, alone.corpus_root) == (None, ["R"])  # R alone, not R beside the TIMIT sample
    assert parse_args(["meanshift", "--model", "m"]).timit == SHARED_SAMPLE
    assert parse_args(["separate", "--corpus", "toy"]).timit is None
    assert parse_args(["train"]).timit is None  # bench train picks its own two-corpus default


def test_a_runs_own_count_threshold_is_tried_for_its_own_counting_method_only():
    import argparse

    from benchmarks.meanshift import count_settings
    from speechsep.config import ExperimentConfig

    args = argparse.Namespace(bandwidths=[0.2], eigen_thresholds=[0.1], directions_per_talker=[1.5],
                              min_silhouettes=[0.3])
    config = ExperimentConfig.for_experiment("meanshift", talkers=(1, 2, 3), count_method="eigenvalues",
                                             count_threshold=0.12, meanshift_bandwidth=0.15)
    assert count_settings("eigenvalues", args, config) == [{"threshold": 0.1}, {"threshold": 0.12}]
    assert count_settings("silhouette", args, config) == [{"min_silhouette": 0.3}]
    assert count_settings("meanshift", args, config) == [{"bandwidth": 0.15}, {"bandwidth": 0.2}]
    assert count_settings("participation", args, config) == [{"directions_per_talker": 1.5}]
    assert count_settings("eigengap", args, config) == [{}]
