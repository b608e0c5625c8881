"""Small real file systems for the tests of full and read-only disks."""

import contextlib
import subprocess

import pytest


@contextlib.contextmanager
def tmpfs(folder, options):
    """A tmpfs mounted at `folder` with mount `options` such as "size=40k" or "size=1m,ro"
    (needs root; the test is skipped, with the reason, where `mount` is not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()[:80]})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
