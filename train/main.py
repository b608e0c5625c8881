"""Command line: train a zoo model.

    python -m train.main --model dcgan --dataset fashion_mnist --epochs 5 --logdir runs/dcgan

This module only parses flags (defined from `train.config.SETTINGS`); `train.trainer.train`
does the work. Running the same command again resumes from the run's last checkpoint.
"""

import os

from absl import flags

from models import catalog
from train import cli, config

FLAGS = flags.FLAGS


def define_flags(flag_values=None):
    # From the catalog, not the families: --help answers without loading TensorFlow.
    families = catalog.read()
    fv = config.define_flags(flag_values, extra_help={
        "model": catalog.model_help(families), "model_option": catalog.options_help(families)})
    flags.adopt_module_key_flags(config, flag_values=fv)  # listed by --helpshort
    return fv


def main(argv, flag_values=None):
    from train.trainer import train

    fv = FLAGS if flag_values is None else flag_values
    settings = config.config_from_flags(fv)
    print(f"GAN Zoo: setting up {settings.model} on {settings.dataset} (TensorFlow, data, model)", flush=True)
    result = train(settings, announce=lambda line: print(line, flush=True))
    if result.resumed_from is not None:
        print(f"resumed from the checkpoint at {result.resumed_from.describe()}")
    print(f"final weights: {result.files['weights']}")
    print(f"model:         {result.files['model']}")
    print(f"samples:       {result.files['samples']} (one grid per epoch in {os.path.join(result.logdir, 'samples')})")
    print(f"checkpoints:   {os.path.join(result.logdir, 'checkpoints')} (run the same command to resume)")
    print(f"TensorBoard:   tensorboard --logdir {result.logdir}   then open http://localhost:6006")


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
