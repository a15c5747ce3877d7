"""A tiny ``fit`` of the kit's model, loss and accuracy callback under one strategy, for tests/test_distribute.py.

    python tests/multiworker_fit.py OUT_PREFIX default mirrored2    (one process, one run after the other)
    python -m speechsep launch --workers 2 -- python tests/multiworker_fit.py OUT_PREFIX multiworker

Writes ``OUT_PREFIX-<strategy>-<worker rank>.json``: the final weights and
the history. Every strategy trains on the same global batches (3 steps of
GLOBAL_BATCH fixed chunks), each replica on a contiguous slice of the batch,
so all must end with the same weights and losses. ``mirrored2`` is
``MirroredStrategy`` on 2 logical CPU devices (configured before TensorFlow
starts; the default strategy then uses the first).
"""

from __future__ import annotations

import json
import sys

import numpy as np

GLOBAL_BATCH, STEPS, VALID_CHUNKS, FRAMES = 4, 3, 7, 10  # 7 validation chunks: a partial last batch


def arrays(count: int, seed: int):
    """Features [N, T, F], ibm [N, T, F] and active [N, T, F] of ``count`` random chunks."""
    from speechsep.signal import N_BINS

    rng = np.random.default_rng(seed)
    features = rng.standard_normal((count, FRAMES, N_BINS)).astype(np.float32)
    ibm = (features > 0).astype(np.int32) ^ (rng.random((count, FRAMES, N_BINS)) < 0.2)
    active = (rng.random((count, FRAMES, N_BINS)) < 0.8).astype(np.float32)
    return features, ibm.astype(np.int32), active


def main(prefix: str, *strategy_names: str) -> None:
    import tensorflow as tf

    if "mirrored2" in strategy_names:  # before TensorFlow initialises its devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from speechsep.training import distribute

    for name in strategy_names:
        fit(distribute.make_strategy("mirrored" if name == "mirrored2" else name), f"{prefix}-{name}")


def fit(strategy, prefix: str) -> None:
    import keras
    import tensorflow as tf

    from speechsep.training import distribute

    from speechsep.config import ExperimentConfig
    from speechsep.nn.models import build_model
    from speechsep.training.tf_config import cluster_task
    from speechsep.training.trainer import SeparationAccuracy, make_loss, make_packer, seed_everything

    config = ExperimentConfig(model="feedforward", loss="mse", readout="mask", hidden_units=8, num_layers=1,
                              batch_size=GLOBAL_BATCH)
    distribute.check_global_batch(strategy, {"--batch-size": config.batch_size})
    pack = make_packer(config)

    def dataset(count: int, seed: int) -> tf.data.Dataset:
        features, ibm, active = arrays(count, seed)
        return tf.data.Dataset.from_tensor_slices((features, {"ibm": ibm, "active": active}))

    train = dataset(GLOBAL_BATCH * STEPS, 1).batch(GLOBAL_BATCH).map(pack)
    valid = dataset(VALID_CHUNKS, 2).batch(GLOBAL_BATCH).map(pack)
    if distribute.is_multi_worker(strategy):
        def replica_slices(context: tf.distribute.InputContext) -> tf.data.Dataset:
            size = context.get_per_replica_batch_size(GLOBAL_BATCH)
            first = context.input_pipeline_id * size
            return train.map(lambda x, y: (x[first:first + size], y[first:first + size]))

        train = strategy.distribute_datasets_from_function(replica_slices)
    seed_everything(0)
    with strategy.scope():
        model = build_model(config)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss=make_loss(config))
    features, ibm, active = arrays(VALID_CHUNKS, 2)
    samples = {"val_": (features, ibm, active > 0)}
    history = model.fit(train, validation_data=valid, epochs=1, steps_per_epoch=STEPS, verbose=0, shuffle=False,
                        callbacks=[SeparationAccuracy(config, samples)])
    task = cluster_task()
    rank = task.rank if task is not None else 0
    with open(f"{prefix}-{rank}.json", "w") as handle:
        json.dump({"replicas": strategy.num_replicas_in_sync,
                   "history": {key: [float(v) for v in values] for key, values in history.history.items()},
                   "weights": [w.tolist() for w in model.get_weights()]}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:])
