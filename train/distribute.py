"""Choosing where training runs: TensorFlow's own distribution strategies, nothing home-made.

    default      one device (the first GPU if there is one, else the CPU)
    mirrored     all local GPUs, the devices named in `devices`, or N virtual CPU devices
                 (`virtual_devices=N`) to exercise multi-replica training without GPUs
    multiworker  MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG variable
    tpu          TPUStrategy on the TPU the environment provides

The model, its optimizers and its metrics are created under `strategy.scope()` by the trainer;
`models.gan.GAN` does the per-replica arithmetic (loss scaling, noise slices, metric means).
"""

import json
import os
import re

import tensorflow as tf

from models.errors import GanZooError

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def configure_virtual_devices(count):
    """Splits the first CPU into `count` logical devices (before TensorFlow starts)."""
    if count < 1:
        raise GanZooError(f"--virtual_devices must be at least 1, got {count}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return [f"/cpu:{i}" for i in range(count)]
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        raise GanZooError(
            "virtual devices must be set before TensorFlow runs anything: call "
            "make_strategy(..., virtual_devices=N) first in the process"
        ) from None
    return [f"/cpu:{i}" for i in range(count)]


def read_tf_config():
    """The parsed TF_CONFIG of a multi-worker run, or a GanZooError saying what is wrong."""
    raw = os.environ.get("TF_CONFIG")
    example = '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
    if not raw:
        raise GanZooError(f"--strategy multiworker needs the TF_CONFIG variable, e.g. {example}")
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task_type, index = config["task"]["type"], int(config["task"]["index"])
    except (ValueError, KeyError, TypeError):
        raise GanZooError(f"TF_CONFIG is malformed: it must look like {example}") from None
    if not isinstance(workers, list) or not workers:
        raise GanZooError(f"TF_CONFIG lists no workers: it must look like {example}")
    if task_type not in config["cluster"] or not 0 <= index < len(config["cluster"][task_type]):
        raise GanZooError(
            f"TF_CONFIG task {task_type}:{index} is not in its cluster; fix task.type/task.index"
        )
    return config


def _device_key(name):
    """("GPU", 0) for "/gpu:0", "/device:GPU:0", "GPU:0" or "/job:localhost/.../device:GPU:0"."""
    match = re.search(r"(?:^|/|device:)([A-Za-z_]+):(\d+)$", name.strip())
    return (match.group(1).upper(), int(match.group(2))) if match else None


def check_devices(devices):
    """Refuses a device this machine does not have (TensorFlow would fall back to the CPU)."""
    present = {_device_key(d.name) for d in tf.config.list_logical_devices()}
    for device in devices:
        if _device_key(device) not in present:
            have = ", ".join(sorted(f"/{kind.lower()}:{index}" for kind, index in present if kind != "XLA_CPU"))
            raise GanZooError(f"--devices names {device}, which this machine does not have (it has "
                              f"{have}): name devices it has, or leave out --devices")


_STRATEGIES_MADE = {}


def make_strategy(name="default", devices=None, virtual_devices=None):
    """The `tf.distribute.Strategy` called `name` (see the module docstring).

    A process gets one strategy per choice: asking again returns the same object (two mirrored
    strategies in one process would mix up their collective operations).
    """
    key = (name, tuple(devices) if devices else None, virtual_devices)
    if key not in _STRATEGIES_MADE:
        _STRATEGIES_MADE[key] = _make_strategy(name, devices, virtual_devices)
    return _STRATEGIES_MADE[key]


def _make_strategy(name, devices, virtual_devices):
    if name not in STRATEGIES:
        raise GanZooError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    if virtual_devices is not None and name != "mirrored":
        raise GanZooError("--virtual_devices goes with --strategy mirrored")
    if devices and name != "mirrored":
        raise GanZooError("--devices goes with --strategy mirrored")
    if devices and virtual_devices:
        raise GanZooError("give --devices or --virtual_devices, not both")

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if virtual_devices is not None:
            devices = configure_virtual_devices(virtual_devices)
        elif devices:
            check_devices(devices)
        try:
            return tf.distribute.MirroredStrategy(devices=devices or None)
        except (ValueError, RuntimeError) as e:
            raise GanZooError(f"cannot mirror over {devices}: {str(e).splitlines()[0]}") from None
    if name == "multiworker":
        read_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    # Look for a TPU without asking any metadata server: a local TPU device or a named one.
    if not tf.config.list_physical_devices("TPU") and not os.environ.get("TPU_NAME"):
        raise GanZooError("no TPU found on this machine: use --strategy default or mirrored")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=os.environ.get("TPU_NAME", "local")
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise GanZooError(
            f"cannot start the TPU ({str(e).splitlines()[0][:120]}): use --strategy default or mirrored"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
    """True for the process that writes the run's files (always, but in multi-worker runs)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and
                                    "chief" not in resolver.cluster_spec().as_dict())


def worker_logdir(strategy, logdir):
    """The chief writes to `logdir`; another worker to its own folder inside it."""
    if is_chief(strategy):
        return logdir
    resolver = strategy.cluster_resolver
    return os.path.join(logdir, "workers", f"{resolver.task_type}-{resolver.task_id}")


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and \
        strategy.extended._num_workers > 1  # noqa: SLF001 -- no public count of workers


def newest_common_step(strategy, step):
    """The newest checkpoint step that every worker holds, given this worker's newest `step`
    (None: no checkpoint); `step` itself outside multi-worker runs.

    Workers checkpoint at the same steps, but a kill can fall between two workers' saves of the
    same step, so one may be a checkpoint ahead: it then resumes from its previous one. Every
    worker must call this at the same point (it is a collective all-gather).
    """
    if not is_multi_worker(strategy):
        return step
    mine = -1 if step is None else int(step)
    per_replica = strategy.run(lambda: tf.constant([mine], tf.int64))
    steps = sorted(set(int(s) for s in strategy.gather(per_replica, axis=0).numpy()))
    if steps[0] < 0 <= steps[-1]:
        raise GanZooError(
            "some workers have checkpoints and others none: restart every worker with the "
            "logdir it had, or delete every worker's checkpoints to start over"
        )
    return None if steps[0] < 0 else steps[0]


def lost_worker_error(error, checkpoint, checkpoint_dir):
    """The GanZooError for a collective that failed because another worker died or hung.

    TensorFlow's coordination service notices a worker that stops sending heartbeats and aborts
    the collectives of the others (an UnavailableError), so they stop instead of waiting forever.
    """
    tasks = sorted(set(re.findall(r"/job:\w+/replica:\d+/task:\d+", str(error))))
    who = f"worker {', '.join(tasks)}" if tasks else "another worker"
    return GanZooError(
        f"{who} of the multi-worker run stopped responding ({type(error).__name__}); restart "
        f"every worker with the same command to resume from the checkpoint at {checkpoint} in "
        f"{checkpoint_dir}"
    )
