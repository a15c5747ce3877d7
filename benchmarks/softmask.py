"""``bench softmask``: binary against soft clustering masks per sharpness beta.

Tuned on VALIDATION mixtures (speakers the network did not train on, and not
the test speakers), with the network of a trained deep-clustering run: every
beta uses the same network outputs and the same k-means centres, so the rows
differ only in how the centres become masks (:func:`speechsep.separation.cluster.soft_masks`).
"""

from __future__ import annotations

from speechsep.cli import corpus_from_args


def bench_softmask(args) -> list[dict]:
    from speechsep import signal
    from speechsep.data import testset
    from speechsep.eval.compare import PAIR_TYPES
    from speechsep.eval.evaluation import check_unseen, score_record, summarise
    from speechsep import pretrained
    from speechsep.separation.separator import read_masks, single_threaded_blas

    model = pretrained.load(args.model)  # a shipped model's name or a run folder
    separator, config = model.separator, model.config
    if config.model != "dc":
        raise ValueError(f"{args.model}: bench softmask needs a deep-clustering run, not a {config.model!r} model")
    corpus = corpus_from_args(args)
    mixtures = testset.from_corpus(corpus, args.mixtures, config.seed, config.num_speakers, split=args.split)
    check_unseen(model.source.folder, mixtures.speakers, mixtures.corpus)
    print(f"{mixtures.description}; network {args.model}; readout {config.readout}")
    betas = [None] + sorted(args.betas)
    rows = {beta: [] for beta in betas}
    for record in mixtures.records:
        spectrum = signal.stft(record["mixture"])  # [N, F]
        output = separator.network_output(spectrum)  # [N, F, D]
        for beta in betas:
            with single_threaded_blas():
                readout = read_masks(output, record["active"], config.replace(soft_mask_beta=beta))
            estimates = signal.apply_masks(spectrum, readout.masks, len(record["mixture"]))  # [C, T]
            rows[beta].append(score_record(record, estimates, readout.labels))
    table = []
    print(f"{'masks':>14}{'SDRi (dB)':>12}{'SI-SDRi (dB)':>14}{'STOIi':>9}{'FF':>8}{'MM':>8}{'FM':>8}")
    for beta in betas:
        summary = summarise(rows[beta])
        pair_sdri = {pair: (summary["by_pair_type"].get(pair, {}).get("sdr_improvement") or {}).get("mean")
                     for pair in PAIR_TYPES}
        overall = summary["overall"]
        row = {"beta": beta, **{key: overall[f"{key}_improvement"]["mean"] for key in ("sdr", "si_sdr", "stoi")},
               **{f"sdri_{pair}": value for pair, value in pair_sdri.items()}}
        table.append(row)
        name = "binary" if beta is None else f"soft, beta {beta:g}"
        print(f"{name:>14}{row['sdr']:>12.2f}{row['si_sdr']:>14.2f}{row['stoi']:>9.3f}"
              + "".join(f"{value:>8.2f}" if value is not None else f"{'-':>8}" for value in pair_sdri.values()))
    return table
