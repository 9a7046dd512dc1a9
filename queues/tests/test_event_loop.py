"""The worker's event loop never sleeps a second with work due (queues/sqs_transport.py, fixes 2 and 3).

Each fix is checked twice: kombu's own code still has the bug (when an upgrade fixes it, that test
fails: delete the patch), and the patched code does not.
"""

import time

from kombu.asynchronous.http.curl import CurlClient
from kombu.asynchronous.hub import Hub

from queues import sqs_transport


def due_timers(hub: Hub) -> int:
    now = time.monotonic()
    return sum(1 for eta, _priority, entry in hub.timer._queue if eta <= now and not entry.canceled)


def live_timers(hub: Hub, fun) -> list[float]:
    """Seconds until each live timer that runs `fun`."""
    now = time.monotonic()
    return sorted(
        eta - now
        for eta, _priority, entry in hub.timer._queue
        if not entry.canceled and getattr(entry.fun, "__func__", entry.fun) is fun
    )


def hub_with_due_timers(count: int) -> tuple[Hub, list[int]]:
    hub, ran = Hub(), []
    for index in range(count):
        hub.call_later(0, ran.append, index)
    return hub, ran


def test_kombu_sleeps_a_second_when_more_than_ten_timers_are_due():
    hub, ran = hub_with_due_timers(15)

    delay = sqs_transport._fire_timers(hub)  # kombu's own fire_timers

    assert len(ran) == 10 and due_timers(hub) == 5
    assert delay == 1


def test_the_patched_hub_polls_at_once_while_timers_are_still_due():
    hub, ran = hub_with_due_timers(15)

    first = hub.fire_timers()
    second = hub.fire_timers()

    assert first == 0
    assert sorted(ran) == list(range(15)) and due_timers(hub) == 0
    assert second > 0  # nothing due: the hub may sleep again


def test_kombu_reads_libcurls_milliseconds_as_seconds_and_keeps_every_timer():
    hub = Hub()
    client = CurlClient(hub)
    try:
        sqs_transport._kombu_set_timeout(client, 250)
        sqs_transport._kombu_set_timeout(client, 40)

        assert [round(delay) for delay in live_timers(hub, CurlClient._timeout_check)] == [40, 250]
    finally:
        client.close()


def test_libcurl_milliseconds_become_one_timer_in_seconds():
    hub = Hub()
    client = CurlClient(hub)
    try:
        client._set_timeout(250)
        client._set_timeout(40)  # libcurl: replaces the 250 ms timer

        (delay,) = live_timers(hub, CurlClient._timeout_check)
        assert 0 < delay <= 0.04

        client._set_timeout(-1)  # libcurl: no timer at all
        assert live_timers(hub, CurlClient._timeout_check) == []
    finally:
        client.close()
