import signal

import pytest

from devstack.signals import STOP_SIGNALS, StopRequested, StopSignals

# The handler is called directly, as the interpreter would call it: installing it for real would take SIGINT away
# from pytest.


def test_ctrl_c_and_sigterm_are_the_stop_signals() -> None:
    assert set(STOP_SIGNALS) == {signal.SIGINT, signal.SIGTERM}


def test_a_signal_raises_stop_requested_once() -> None:
    signals = StopSignals()
    with pytest.raises(StopRequested) as caught:
        signals._handle(signal.SIGTERM, None)
    assert caught.value.signal_name == "SIGTERM"
    assert signals.shutting_down
    signals._handle(signal.SIGINT, None)  # already stopping: ignored


def test_stop_requested_escapes_except_exception() -> None:
    assert not issubclass(StopRequested, Exception)


def test_signals_during_shutdown_are_ignored() -> None:
    signals = StopSignals()
    signals.begin_shutdown()
    signals._handle(signal.SIGINT, None)
    signals._handle(signal.SIGTERM, None)


def _defer_then_signal(signals: StopSignals, steps: list[str], *, depth: int) -> None:
    with signals.deferred():
        if depth > 1:
            _defer_then_signal(signals, steps, depth=depth - 1)
        else:
            signals._handle(signal.SIGINT, None)
        steps.append(f"end of block {depth}")


def test_a_deferred_signal_is_raised_when_the_block_ends() -> None:
    signals = StopSignals()
    steps: list[str] = []
    with pytest.raises(StopRequested) as caught:
        _defer_then_signal(signals, steps, depth=1)
    assert steps == ["end of block 1"]
    assert caught.value.signal_name == "SIGINT"


def test_nested_deferral_raises_only_when_the_outermost_block_ends() -> None:
    signals = StopSignals()
    steps: list[str] = []
    with pytest.raises(StopRequested):
        _defer_then_signal(signals, steps, depth=3)
    assert steps == ["end of block 1", "end of block 2", "end of block 3"]


def test_a_deferred_block_without_a_signal_raises_nothing() -> None:
    signals = StopSignals()
    with signals.deferred():
        pass
    assert not signals.shutting_down


def test_a_deferred_signal_is_dropped_once_shutdown_has_begun() -> None:
    signals = StopSignals()
    with signals.deferred():
        signals.begin_shutdown()
        signals._handle(signal.SIGINT, None)
    assert signals.shutting_down
