"""Runs in its own process, because virtual devices must be set before TensorFlow starts.

    python tests/scripts/distributed.py step REPLICAS OUT.npz [MODEL [EMA_DECAY]]   train steps
    python tests/scripts/distributed.py zoo LOGDIR              every zoo model, 2 replicas
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np
import tensorflow as tf

from train import distribute


def one_step(replicas, out, name="dcgan", ema_decay=None):
    strategy = distribute.make_strategy("mirrored", virtual_devices=2)
    if replicas == 1:
        strategy = tf.distribute.get_strategy()
    import keras

    import models

    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = models.get(name, seed=0, ema_decay=None if ema_decay is None else float(ema_decay))
        model.compile(jit_compile=False)
    rng = np.random.default_rng(0)
    # One step, or three with a moving average (so that it averages more than one update).
    batches = 1 if ema_decay is None else 3
    real = rng.uniform(-1, 1, (32 * batches, 28, 28, 1)).astype("float32")
    if model.conditional:
        real = real, rng.integers(0, model.num_classes, 32 * batches).astype("int32")
    history = model.fit(tf.data.Dataset.from_tensor_slices(real).batch(32), epochs=1, verbose=0).history
    weights = np.concatenate([w.numpy().ravel() for w in model.generator.weights + model.discriminator.weights])
    ema = [np.zeros(0)]
    spread = 0.0  # the largest difference between two replicas' copies of a shadow weight
    for shadow in model.ema_weights:
        ema.append(shadow.numpy().ravel())
        copies = [np.asarray(c) for c in getattr(shadow.value, "values", [shadow.numpy()])]
        spread = max([spread] + [float(np.abs(c - copies[0]).max()) for c in copies])
    np.savez(out, weights=weights, ema=np.concatenate(ema), ema_spread=spread,
             replicas=strategy.num_replicas_in_sync, **{k: v[-1] for k, v in history.items()})


def zoo(logdir):
    from models import names
    from models.errors import GanZooError
    from train.trainer import TrainConfig, train

    report = {}
    for name in names():
        result = train(TrainConfig(model=name, epochs=1, batch_size=16, steps_per_epoch=2,
                                   logdir=os.path.join(logdir, name), strategy="mirrored",
                                   virtual_devices=2, samples=4, verbose=0))
        report[name] = {"replicas": json.load(open(os.path.join(result.logdir, "run.json")))["replicas"],
                        "finite": bool(all(np.isfinite(v[0]) for v in result.history.values())),
                        "g_steps": int(result.model.g_optimizer.iterations.numpy())}
    try:
        train(TrainConfig(model="dcgan", batch_size=15, logdir=os.path.join(logdir, "odd"),
                          strategy="mirrored", virtual_devices=2, verbose=0))
        report["odd_batch"] = "no error"
    except GanZooError as e:
        report["odd_batch"] = str(e)
    print(json.dumps(report))


if __name__ == "__main__":
    if sys.argv[1] == "step":
        one_step(int(sys.argv[2]), sys.argv[3], *sys.argv[4:])
    else:
        zoo(sys.argv[2])
