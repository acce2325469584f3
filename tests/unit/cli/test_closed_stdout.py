"""`synth ... | head`: a reader that closes stdout early ends the command quietly, without a traceback."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_stdout_is_exit_141_without_a_traceback() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "config"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    child.stdout.close()  # before the child writes: its first write fails with EPIPE
    _, stderr = child.communicate(timeout=60)
    assert b"Traceback" not in stderr, stderr.decode()
    assert b"BrokenPipeError" not in stderr, stderr.decode()
    assert child.returncode == 141
