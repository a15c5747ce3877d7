"""``bench meanshift``: speaker counting on mixtures of 1, 2, 3... talkers, per method and per mean-shift bandwidth.

With the network of a trained deep-clustering run, on VALIDATION mixtures (to
choose a method and its parameters) and TEST mixtures (to report) of each
talker count K of ``--talkers`` (default: the counts the run was trained on,
or 1-3 for a run trained on a fixed count), drawn exactly as the test set is
(:func:`speechsep.data.testset.draw_mixtures`; a one-talker "mixture" is that
talker alone). Prints

* the mean-shift sweep: the share of mixtures counted right per bandwidth and
  minimum cluster fraction, and the clustering time;
* for each counting method of :data:`speechsep.separation.counting.COUNTERS`
  (and, for a Chimera++ network, its count head and its mask head's
  energies, :data:`speechsep.config.HEAD_COUNT_METHODS`)
  and each of its settings (mean-shift: ``--bandwidths`` and the run's own;
  eigenvalues: ``--eigen-thresholds``; participation: ``--directions-per-talker``;
  silhouette: ``--min-silhouettes``; mask energy: ``--min-shares``) the
  share of each K counted right on each split and the milliseconds per 3 s
  of mixture the count takes;
* for each method, at its setting chosen on validation (see
  :func:`validation_score`), the count-confusion matrix of each split: rows
  the true K, columns the estimated K;
* the best method and setting on validation, as the training-script flags
  that make it a run's default;
* the Gram spectrum of each set: the median of the largest eigenvalues of the
  active bins' ``VᵀV / N`` (:func:`gram_spectrum_table`) and the spread of
  their participation ratio (the participation counter's statistic), beside the median
  share of the active bins the K-th loudest talker dominates. The eigenvalue
  counter counts the talkers whose direction holds more than its threshold,
  so a third talker that takes a fifth of the bins but no eigenvalue of its
  own is one the embeddings merged, whatever the counter.
"""

from __future__ import annotations

import time

from speechsep.cli import corpus_from_args
from speechsep.config import HEAD_COUNT_METHODS
from speechsep.eval.metrics import confusion_matrix, format_confusion


COUNT_TARGETS = {1: 0.95, 2: 0.90, 3: 0.80}
"""The share of the mixtures of K talkers a counter should count right (the targets of docs/benchmarks.md)."""


def validation_score(right: dict) -> tuple[int, float]:
    """How a setting ranks on validation: (targets of :data:`COUNT_TARGETS` it meets, mean share right over K).

    ``right`` maps K to the share counted right (``None``: no mixture of K).
    A counter that gets one and two talkers right and never finds three
    ranks above one that is half right on every K.
    """
    import numpy as np

    known = {k: value for k, value in right.items() if value is not None}
    met = sum(value >= COUNT_TARGETS[k] for k, value in known.items() if k in COUNT_TARGETS)
    return int(met), float(np.mean(list(known.values()))) if known else float("nan")


def gram_spectrum_table(sets: dict, k_max: int) -> dict:
    """Per set ``name -> (K, [(points [N, D], frames, shares [K])])``: the median of each of the
    ``k_max + 1`` largest Gram eigenvalues of its mixtures ("lambda"), the 10th, 50th and 90th percentiles of their
    participation ratios (``1 / Σ λ²``, "participation") and the median share of the active bins dominated by the
    loudest, second... talker ("share", K values, largest first)."""
    import numpy as np

    from speechsep.separation import counting

    table = {}
    for name, (_, embedded) in sets.items():
        whole = [counting.gram_spectrum(points) for points, _, _ in embedded]  # one per mixture
        spectra = [spectrum[:k_max + 1] for spectrum in whole]
        ratios = [counting.spectrum_participation(spectrum) for spectrum in whole]
        table[name] = {"lambda": np.median(spectra, axis=0).tolist(),
                       "participation": np.percentile(ratios, [10, 50, 90]).tolist(),
                       "share": np.median([shares for _, _, shares in embedded], axis=0).tolist()}
    return table


def dominant_shares(record) -> list[float]:
    """The share of the record's active bins each of its sources dominates (its ``ibm``), largest first [K]."""
    import numpy as np

    winners = record["ibm"][record["active"]]
    talkers = len(record["sources"])
    return sorted((np.bincount(winners, minlength=talkers) / max(1, winners.size)).tolist(), reverse=True)


def bench_meanshift(args) -> dict:
    import numpy as np

    from speechsep import signal
    from speechsep.data import testset
    from speechsep.data.mixing import MixingConfig, split_speakers
    from speechsep.separation import cluster, counting
    from speechsep import pretrained
    from speechsep.nn.models import run_checkpoint
    from speechsep.separation.separator import embeddings_of

    model = pretrained.load(args.model)  # a shipped model's name or a run folder
    separator, config = model.separator, model.separator.config
    print(f"Counting with {model.source.name}: " + ("its shipped weights" if model.source.shipped else
                                                    f"{run_checkpoint(model.source.folder).name} of the run"))
    talkers = tuple(args.talkers) if args.talkers else (config.talker_set if config.counts_talkers else (1, 2, 3))
    corpus = corpus_from_args(args)
    seed = config.seed
    speakers_of = split_speakers(corpus, seed=seed)
    sets = {}  # "valid 2-spk" -> (K, [(points [N, D], frames, shares [K])]): only the bins a counter sees
    heads = {}  # id of an entry of sets -> what the count and mask heads say of that mixture (head_summary)
    for split in ("valid", "test"):
        for speakers_per_mix in talkers:
            speakers = speakers_of[split]
            if len(speakers) < speakers_per_mix:
                continue
            mixing = MixingConfig(num_speakers=speakers_per_mix, seed=seed + 100 * speakers_per_mix)
            embedded = []
            for record in testset.draw_mixtures(corpus, speakers, mixing, args.mixtures):
                spectrum = signal.stft(record["mixture"])
                active = signal.active_bins(spectrum)
                output = separator.network_output(spectrum)
                embeddings = embeddings_of(output)  # [T, F, D]
                rows = cluster.fit_rows(active)  # as counting and clustering draw them
                embedded.append((embeddings.reshape(-1, embeddings.shape[-1])[rows], embeddings.shape[0],
                                 dominant_shares(record)))
                heads[id(embedded[-1])] = head_summary(output, active)
            sets[f"{split} {speakers_per_mix}-spk"] = (speakers_per_mix, embedded)

    def per_3s(seconds, frames):  # milliseconds per 3 s of mixture
        return 1000 * seconds * 3 * signal.SAMPLE_RATE / signal.HOP_LENGTH / frames

    sweep = []
    print("Mean-shift: share of mixtures whose clusters number the talkers")
    print(f"{'bandwidth':>10}{'min frac':>10}" + "".join(f"{name + ' count ok':>22}" for name in sets)
          + f"{'ms / 3 s mix':>14}")
    for bandwidth in args.bandwidths:
        for fraction in args.min_fractions:
            row = {"bandwidth": bandwidth, "min_cluster_fraction": fraction}
            times = []
            for name, (speakers_per_mix, embedded) in sets.items():
                right = 0
                for points, frames, _ in embedded:
                    start = time.perf_counter()
                    found = len(cluster.spherical_mean_shift(points, bandwidth=bandwidth,
                                                             min_cluster_fraction=fraction)[1])
                    times.append(per_3s(time.perf_counter() - start, frames))
                    right += found == speakers_per_mix
                row[name] = right / len(embedded)
            row["ms_per_3s"] = float(np.median(times))
            sweep.append(row)
            print(f"{bandwidth:>10.3f}{fraction:>10.2f}" + "".join(f"{row[name]:>22.0%}" for name in sets)
                  + f"{row['ms_per_3s']:>14.0f}")

    k_max = max(talkers)
    results, chosen, chosen_scores, confusions = [], {}, {}, {}
    print("\nCounting methods: share of mixtures counted right per true K (valid | test)")
    print(f"{'method':<15}{'setting':<28}" + "".join(f"{'valid ' + str(k):>9}" for k in talkers)
          + "".join(f"{'test ' + str(k):>9}" for k in talkers) + f"{'ms / 3 s':>10}")
    head_methods = [m for m in HEAD_COUNT_METHODS if all(m in summary for summary in heads.values())]
    for method in list(counting.COUNTERS) + head_methods:
        best = None
        for params in count_settings(method, args, config):
            matrices, times = {}, []
            for split in ("valid", "test"):
                pairs = []
                for name, (speakers_per_mix, embedded) in sets.items():
                    if not name.startswith(split):
                        continue
                    for entry in embedded:
                        points, frames, _ = entry
                        start = time.perf_counter()
                        found = (count_heads(heads[id(entry)], method, range(1, k_max + 1), **params)
                                 if method in head_methods else
                                 counting.count_points(points, method, range(1, k_max + 1), **params))
                        times.append(per_3s(time.perf_counter() - start, frames))
                        pairs.append((speakers_per_mix, found))
                matrices[split] = confusion_matrix(pairs, k_max)
            right = {split: {k: _right(matrices[split], k) for k in talkers} for split in matrices}
            row = {"method": method, "params": params, "right": right, "ms_per_3s": float(np.median(times)),
                   "matrices": {split: matrix.tolist() for split, matrix in matrices.items()}}
            results.append(row)
            setting = ", ".join(f"{key}={value:g}" for key, value in params.items()) or "defaults"
            print(f"{method:<15}{setting:<28}"
                  + "".join(_percent(right[split][k]) for split in ("valid", "test") for k in talkers)
                  + f"{row['ms_per_3s']:>10.0f}")
            score = validation_score(right["valid"])  # chosen on validation
            if best is None or (np.isfinite(score[1]) and score > best[0]):
                best = (score, row)
        chosen[method], chosen_scores[method] = best[1]["params"], best[0]
        for split, matrix in best[1]["matrices"].items():
            matrix = np.asarray(matrix)
            if not matrix.sum():
                continue
            confusions[f"{method} {split}"] = {"matrix": matrix.tolist(), "params": best[1]["params"],
                                               "right": float(np.trace(matrix) / matrix.sum())}
    for method, params in chosen.items():
        setting = ", ".join(f"{key}={value:g}" for key, value in params.items()) or "its defaults"
        for split in ("valid", "test"):
            entry = confusions.get(f"{method} {split}")
            if entry is not None:
                print("\n" + format_confusion(np.asarray(entry["matrix"]),
                                              f"{method} ({setting}, chosen on validation), {split} mixtures "
                                              f"({entry['right']:.0%} right):"))
    best_method = max(chosen_scores, key=lambda method: (chosen_scores[method][0],
                                                         np.nan_to_num(chosen_scores[method][1], nan=-1.0)))
    flags = f"--count-method {best_method}" + "".join(f" --count-threshold {value:g}"
                                                        for value in chosen[best_method].values())
    met, mean = chosen_scores[best_method]
    print(f"\nBest on validation (meets {met} of the {len(COUNT_TARGETS)} count targets "
          f"{', '.join(f'K={k}: {v:.0%}' for k, v in COUNT_TARGETS.items())}; {mean:.0%} right on average "
          f"over K): {flags}")
    spectra = gram_spectrum_table(sets, k_max)
    print("\nGram spectrum of the active bins' embeddings (medians): eigenvalues of VᵀV/N, largest first, and the "
          "share of the bins each talker dominates, loudest first")
    print(f"{'set':<14}" + "".join(f"{'lambda' + str(i + 1):>9}" for i in range(k_max + 1))
          + f"{'participation ratio, 10-50-90 %':>34}  {'bin shares':<}")
    for name, row in spectra.items():
        print(f"{name:<14}" + "".join(f"{value:>9.3f}" for value in row["lambda"])
              + f"{' / '.join(f'{value:.2f}' for value in row['participation']):>34}"
              + "  " + ", ".join(f"{value:.2f}" for value in row["share"]))
    return {"sweep": sweep, "counting": results, "chosen": chosen, "confusions": confusions, "spectra": spectra,
            "talkers": list(talkers), "best": {"method": best_method, "params": chosen[best_method]}}


def count_settings(method: str, args, config) -> list[dict]:
    """The settings of counting ``method`` to try: its :data:`~speechsep.separation.counting.THRESHOLDS` parameter
    at ``--bandwidths`` (mean-shift), ``--eigen-thresholds``, ``--directions-per-talker`` (participation) or
    ``--min-silhouettes``, plus the run's own."""
    from speechsep.separation import counting

    name = counting.THRESHOLDS.get(method)
    values = {"meanshift": args.bandwidths, "eigenvalues": args.eigen_thresholds,
              "participation": args.directions_per_talker, "silhouette": args.min_silhouettes,
              "mask_energy": getattr(args, "min_shares", None)}.get(method)
    if not name or not values:
        return [{}]
    # the run's own setting: its count_threshold belongs to its own count_method; mean-shift also has the bandwidth
    own_config = config if config.count_method == method else config.replace(count_method=method, count_threshold=None)
    own = counting.config_params(own_config).get(name)
    return [{name: float(value)} for value in sorted(set(values) | ({own} if own is not None else set()))]


def head_summary(output, active) -> dict:
    """What a Chimera++ network's heads say of one mixture: ``{"head": count softmax [C], "mask_energy": each
    mask's share of the active bins [C]}`` (the heads it has; ``{}`` for a plain embedding network)."""
    from speechsep.separation import counting

    if not isinstance(output, dict):
        return {}
    summary = {}
    if "count" in output:
        summary["head"] = output["count"]
    if "mask" in output:
        summary["mask_energy"] = counting.mask_shares(output["mask"], active)
    return summary


def count_heads(summary: dict, method: str, talkers, **params) -> int:
    """The count a head counter (``head`` or ``mask_energy``) gives from a :func:`head_summary`."""
    from speechsep.separation import counting

    if method == "head":
        return counting.count_from_head(summary["head"], talkers)
    return counting.count_shares(summary["mask_energy"], talkers, **params)


def _right(matrix, k: int):
    """The share of the true-K row counted right, None when there is no mixture of K talkers."""
    row = matrix[k - 1]
    return float(row[k - 1] / row.sum()) if row.sum() else None


def _percent(value) -> str:
    return f"{'-':>9}" if value is None else f"{value:>9.0%}"
