"""How every long-running process learns it should stop: SIGTERM (Kubernetes, `synth up`) or SIGINT (Ctrl-C).

The gRPC services, the worker and the sink wait on an asyncio event; `synth up`, which is not async,
on a threading one. Either is set by the first of the two signals; what stopping means is the caller's.
"""

from __future__ import annotations

import asyncio
import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT; call from inside the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    return stop


def stop_on_signals_sync() -> threading.Event:
    """The same for synchronous code: a threading event set by SIGTERM or SIGINT (main thread only)."""
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda _signum, _frame: stop.set())
    return stop
