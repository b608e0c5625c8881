"""The one exception type for user mistakes.

Anything a user can get wrong (an unknown model or dataset, a missing file, a shape a model
cannot take, an impossible flag combination) raises `GanZooError` with a one-line message that
says what to do. The CLI prints that line and exits non-zero, without a traceback.
"""


class GanZooError(ValueError):
    """A user-facing error whose message is one actionable line."""
