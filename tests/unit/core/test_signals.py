"""SIGTERM and SIGINT set the stop event of the async servers and of synchronous `synth up` alike."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from services.core.signals import STOP_SIGNALS, stop_on_signals, stop_on_signals_sync


@pytest.mark.parametrize("sig", STOP_SIGNALS)
async def test_the_async_event_is_set_by_each_stop_signal(sig: signal.Signals) -> None:
    stop = stop_on_signals()
    try:
        os.kill(os.getpid(), sig)
        await asyncio.wait_for(stop.wait(), 5)
    finally:
        loop = asyncio.get_running_loop()
        for each in STOP_SIGNALS:
            loop.remove_signal_handler(each)


@pytest.mark.parametrize("sig", STOP_SIGNALS)
def test_the_threading_event_is_set_by_each_stop_signal(sig: signal.Signals) -> None:
    previous = {each: signal.getsignal(each) for each in STOP_SIGNALS}
    try:
        stop = stop_on_signals_sync()
        assert not stop.is_set()
        os.kill(os.getpid(), sig)
        assert stop.wait(5)
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)
