"""Running an absl command-line module's `main` inside the test process, with its own flags."""

from absl import flags

from train.cli import guarded


def run_main(module, *args):
    """`module.main` with `args` parsed by a fresh FlagValues; returns the exit message or None."""
    fv = flags.FlagValues()
    module.define_flags(fv)
    argv = fv([module.__name__, *args])
    try:
        guarded(lambda argv: module.main(argv, fv))(argv)
    except SystemExit as e:
        return str(e.code)
    return None
