"""``bench meanshift``: speaker-count accuracy and time of mean-shift per bandwidth.

Tuned on VALIDATION mixtures, reported on test mixtures of 2 and 3 speakers,
with the network of a trained deep-clustering run.
"""

from __future__ import annotations

import time

from speechsep.cli import corpus_from_args


def bench_meanshift(args) -> list[dict]:
    import numpy as np

    from speechsep import signal
    from speechsep.data import testset
    from speechsep.data.mixing import MixingConfig, split_speakers
    from speechsep.separation import cluster
    from speechsep.separation.separator import Separator, embeddings_of

    separator = Separator.from_run_dir(args.model)
    corpus = corpus_from_args(args)
    seed = separator.config.seed
    sets = {}
    for split, speakers_per_mix in (("valid", 2), ("test", 2), ("test", 3)):
        speakers = split_speakers(corpus, seed=seed)[split]
        if len(speakers) < speakers_per_mix:
            continue
        mixing = MixingConfig(num_speakers=speakers_per_mix, seed=seed + 100 * speakers_per_mix)
        embedded = []
        for record in testset.draw_mixtures(corpus, speakers, mixing, args.mixtures):
            spectrum = signal.stft(record["mixture"])
            embedded.append((embeddings_of(separator.network_output(spectrum)), signal.active_bins(spectrum)))
        sets[f"{split} {speakers_per_mix}-spk"] = (speakers_per_mix, embedded)
    rows = []
    print(f"{'bandwidth':>10}{'min frac':>10}" + "".join(f"{name + ' count ok':>22}" for name in sets)
          + f"{'ms / 3 s mix':>14}")
    for bandwidth in args.bandwidths:
        for fraction in args.min_fractions:
            row = {"bandwidth": bandwidth, "min_cluster_fraction": fraction}
            times = []
            for name, (speakers_per_mix, embedded) in sets.items():
                right = 0
                for embeddings, active in embedded:
                    start = time.perf_counter()
                    found = cluster.cluster_embeddings(embeddings, active, method="meanshift", bandwidth=bandwidth,
                                                       min_cluster_fraction=fraction).n_found
                    times.append((time.perf_counter() - start) * 3 * signal.SAMPLE_RATE / signal.HOP_LENGTH
                                 / embeddings.shape[0])
                    right += found == speakers_per_mix
                row[name] = right / len(embedded)
            row["ms_per_3s"] = 1000 * float(np.median(times))
            rows.append(row)
            print(f"{bandwidth:>10.3f}{fraction:>10.2f}" + "".join(f"{row[name]:>22.0%}" for name in sets)
                  + f"{row['ms_per_3s']:>14.0f}")
    return rows
