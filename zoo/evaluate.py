"""Command line: measure a zoo preset with `train.evaluate`'s metrics, next to the real-data floor.

    python -m zoo.evaluate --preset dcgan_fashion_mnist      # the record's figures (N = 10,000, seed 0)
    python -m zoo.evaluate --preset infogan_fashion_mnist --n 2000 --output_dir /tmp/info

The flags are `python -m train.evaluate`'s. The preset is loaded as users load it (`zoo.load`:
checked weights, paper optimizers), then measured exactly as a training run is; the JSON and
figures go to `evaluation/<preset>/` unless `--output_dir` says otherwise.
"""



from models.errors import GanZooError
from train import cli
from train import evaluate as measurement

EvalConfig = measurement.EvalConfig
define_flags = measurement.define_flags


def evaluate(config, progress=None):
    """The report of `train.evaluate.evaluate` for the preset `config.preset`."""
    import zoo

    if not config.preset or config.logdir:
        raise GanZooError("name a preset with --preset NAME (python -c 'import zoo; print(zoo.list())'); "
                          "a training run's --logdir is measured by python -m train.evaluate")
    model = zoo.load(config.preset)
    entry = zoo.info(config.preset)
    record = {"model": model.name, "dataset": entry.get("dataset", "fashion_mnist"),
              "preset": config.preset, "data_dir": None}
    return measurement.evaluate(config, model=model, record=record, progress=progress)


def main(argv, flag_values=None):
    from absl import flags

    fv = flags.FLAGS if flag_values is None else flag_values
    print(f"GAN Zoo: evaluating preset {fv.preset} on {fv.n} samples (seed {fv.seed})", flush=True)
    report = evaluate(measurement.config_from_flags(fv), progress=lambda line: print(line, flush=True))
    print(measurement.format_table(report))
    print(f"wrote {report['json']}")


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
