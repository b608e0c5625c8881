"""What every command line of the zoo does around its `main`: flags, and how it ends.

    python -m train.main | train.evaluate | train.benchmark | train.classifier
    python -m zoo.sample | zoo.publish | zoo.evaluate | zoo.export | zoo.compare

`run(main, define_flags)` defines the command's flags, parses them with absl and calls
`main(argv)`. A `GanZooError` ends the command with its one `error:` line and exit status 1;
a run stopped by SIGTERM / Ctrl-C after saving (an error with a `signum`) prints its
`stopped:` line and exits as the signal's default action would (128 + signal number).
Both lines start on a line of their own, after any progress bar, and are flushed at once.
"""

import sys

from models.errors import GanZooError


def _start():
    """Ends the progress bar's line in a terminal (it may have left the cursor inside it)."""
    sys.stdout.flush()
    return "\n" if sys.stdout.isatty() else ""


def guarded(main):
    """`main` with the zoo's endings: one line and an exit status, never a traceback."""

    def wrapper(argv):
        if len(argv) > 1:
            raise SystemExit(f"error: unexpected arguments {' '.join(argv[1:])}: flags look like "
                             "--name value (--help lists them)")
        try:
            return main(argv)
        except GanZooError as e:
            signum = getattr(e, "signum", None)
            if not signum:
                raise SystemExit(f"{_start()}error: {e}") from None
            sys.stderr.write(f"{_start()}stopped: {e}\n")
            sys.stderr.flush()
            raise SystemExit(128 + signum) from None

    return wrapper


def run(main, define_flags=None):
    """Defines the flags (if `define_flags` is given), then runs `main` under absl."""
    from absl import app

    if define_flags is not None:
        define_flags()
    app.run(guarded(main))
