"""runtime.worker: a bounded queue in front of one thread that drains on stop."""
import threading

import pytest

from unitocom_testing import ROOT  # noqa: F401  (makes gnuradio.unitocom importable)

from gnuradio.unitocom.runtime.worker import Worker


def test_every_item_is_handled_in_order_and_stop_drains_the_queue():
    gate, seen = threading.Event(), []

    def handle(item):
        gate.wait(5)                                  # hold the thread until everything is queued
        seen.append(item)

    w = Worker(handle, max_queue=100)
    assert all(w.put(i) for i in range(50))
    gate.set()
    assert w.stop() == 0                              # drained: nothing discarded
    assert seen == list(range(50))                    # the last item is not lost
    assert (w.done, w.failed, w.alive()) == (50, 0, False)
    assert not w.put(99) and w.refused == 1           # a stopped worker refuses


def test_a_full_queue_refuses_instead_of_growing():
    gate = threading.Event()
    w = Worker(lambda item: gate.wait(5), max_queue=3)
    accepted = [w.put(i) for i in range(10)]
    assert accepted.count(True) <= 4 and accepted[-1] is False   # 3 queued (+1 taken by the thread)
    assert w.refused == accepted.count(False)
    gate.set()
    assert w.stop() == 0


def test_errors_go_to_on_error_and_the_thread_lives_on():
    errors, seen = [], []

    def handle(item):
        if item % 3 == 0:
            raise RuntimeError(f"bad {item}")
        seen.append(item)

    w = Worker(handle, on_error=lambda item, exc: errors.append((item, str(exc))))
    for i in range(9):
        assert w.put(i)
    w.stop()
    assert seen == [1, 2, 4, 5, 7, 8]
    assert errors == [(0, "bad 0"), (3, "bad 3"), (6, "bad 6")]
    assert (w.done, w.failed) == (6, 3)


def test_stop_without_drain_discards_and_counts():
    gate = threading.Event()
    started = threading.Event()

    def handle(item):
        started.set()
        gate.wait(5)

    w = Worker(handle, max_queue=10)
    for i in range(5):
        w.put(i)
    assert started.wait(5)
    threading.Timer(0.2, gate.set).start()
    assert w.stop(drain=False) == 4                   # the item being handled finishes; 4 are discarded


@pytest.mark.parametrize("bad", [0, -1, 2.5, float("inf"), "8"])
def test_bad_queue_size_is_refused(bad):
    with pytest.raises(ValueError, match="max_queue must be an integer"):
        Worker(lambda item: None, max_queue=bad)
