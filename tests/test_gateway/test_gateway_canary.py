"""Canary by weight, routes reload, version changes, failover and timeouts with fast fixed backends."""

from __future__ import annotations

import asyncio
import collections
import re
import time

import openai
import pytest

pytestmark = pytest.mark.slow

API_KEY = "test-key-1"  # written into the keys file by the gateway fixture
MESSAGES = [{"role": "user", "content": "where is my order"}]


def _async_client(gw) -> openai.AsyncOpenAI:  # type: ignore[no-untyped-def]
    # max_retries=0: every failure the gateway lets through must count.
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=API_KEY, max_retries=0, timeout=30)


async def _versions_served(gw, requests: int, concurrency: int = 32) -> collections.Counter[str]:  # type: ignore[no-untyped-def]
    """Which backend version answered each request (the fixed backends sign their answers)."""
    client = _async_client(gw)
    counts: collections.Counter[str] = collections.Counter()
    queue = iter(range(requests))

    async def worker() -> None:
        for _ in queue:
            answer = await client.chat.completions.create(model="support-chat", messages=MESSAGES)
            counts[answer.system_fingerprint or "?"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()
    return counts


def test_canary_weight_splits_traffic(gateway, fixed_backend) -> None:  # type: ignore[no-untyped-def]
    stable, canary = fixed_backend("3"), fixed_backend("4")
    gw = gateway({"stable": (stable.url, 90), "canary": (canary.url, 10)})
    counts = asyncio.run(_versions_served(gw, 1000))
    assert sum(counts.values()) == 1000
    share = counts["support-chat:4"] / 1000
    # Binomial sd at p=0.1, n=1000 is 0.95 points; 3 points is over three sd.
    assert 0.07 <= share <= 0.13, counts


def test_weight_edit_is_picked_up_without_restart(gateway, fixed_backend) -> None:  # type: ignore[no-untyped-def]
    stable, canary = fixed_backend("3"), fixed_backend("4")
    gw = gateway({"stable": (stable.url, 100), "canary": (canary.url, 0)})
    assert asyncio.run(_versions_served(gw, 50)) == {"support-chat:3": 50}
    gw.write_routes({"stable": (stable.url, 0), "canary": (canary.url, 100)})  # the canary takes over
    deadline = time.monotonic() + 5
    while asyncio.run(_versions_served(gw, 10, concurrency=1)) != {"support-chat:4": 10}:
        assert time.monotonic() < deadline, "the edited routes were not picked up"
        time.sleep(0.1)


def test_killing_a_backend_under_load_fails_no_request(gateway, fixed_backend) -> None:  # type: ignore[no-untyped-def]
    # 20 ms per answer so that requests are in flight on the backend when it dies.
    doomed, survivor = fixed_backend("3", delay_ms=20), fixed_backend("4", delay_ms=20)
    gw = gateway({"stable": (doomed.url, 50), "canary": (survivor.url, 50)})

    async def load() -> tuple[collections.Counter[str], list[BaseException], collections.Counter[str]]:
        client = _async_client(gw)
        before: collections.Counter[str] = collections.Counter()
        after: collections.Counter[str] = collections.Counter()
        failures: list[BaseException] = []
        killed = asyncio.Event()
        stop = time.monotonic() + 2.0

        async def worker() -> None:
            while time.monotonic() < stop:
                sent_after_kill = killed.is_set()
                try:
                    answer = await client.chat.completions.create(model="support-chat", messages=MESSAGES)
                except Exception as exc:  # noqa: BLE001 - any failure fails the test below
                    failures.append(exc)
                    continue
                (after if sent_after_kill else before)[answer.system_fingerprint or "?"] += 1

        async def killer() -> None:
            await asyncio.sleep(0.7)
            doomed.kill()
            killed.set()

        await asyncio.gather(killer(), *(worker() for _ in range(32)))
        await client.close()
        return before, failures, after

    before, failures, after = asyncio.run(load())
    assert failures == []
    assert before["support-chat:3"] > 0 and before["support-chat:4"] > 0  # both served before the kill
    assert set(after) == {"support-chat:4"} and after["support-chat:4"] > 20
    retries = re.search(
        r'gateway_backend_retries_total\{model="support-chat",version="3"\} (\d+)', gw.metrics()
    )
    assert retries and int(retries.group(1)) >= 1


def test_version_label_follows_a_promote_behind_the_same_service(gateway, fixed_backend) -> None:  # type: ignore[no-untyped-def]
    old = fixed_backend("3")
    port = int(old.url.rsplit(":", 1)[1])
    gw = gateway({"stable": (old.url, 100)})
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=API_KEY, max_retries=0, timeout=10)

    def served_version() -> str:
        raw = client.chat.completions.with_raw_response.create(model="support-chat", messages=MESSAGES)
        return raw.headers["x-model-version"]

    assert served_version() == "3"
    # The pods behind the Service roll to version 4: same URL, no routes edit.
    old.kill()
    fixed_backend("4", port=port)
    deadline = time.monotonic() + 5
    while served_version() != "4":
        assert time.monotonic() < deadline, "the gateway never learnt the new version"
        time.sleep(0.1)
    served = r'gateway_requests_total\{backend="stable",code="200",model="support-chat",version="4"\} [1-9]'
    assert re.search(served, gw.metrics())


def test_silent_backend_times_out_with_504(gateway, fixed_backend) -> None:  # type: ignore[no-untyped-def]
    slow = fixed_backend("3", delay_ms=5000)
    gw = gateway({"stable": (slow.url, 100)}, read_timeout_s=0.5)
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=API_KEY, max_retries=0, timeout=10)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="support-chat", messages=MESSAGES)
    assert caught.value.status_code == 504
    assert time.monotonic() - started < 3


def test_client_leaving_a_stream_is_counted_and_frees_the_request(gateway, fixed_backend) -> None:  # type: ignore[no-untyped-def]
    slow = fixed_backend("3", delay_ms=200)  # one event every 200 ms, like a slow model
    gw = gateway({"stable": (slow.url, 100)})
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=API_KEY, max_retries=0, timeout=10)
    stream = client.chat.completions.create(model="support-chat", messages=MESSAGES, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.content == "Thanks"
    stream.close()  # the user closes the tab after the first word
    deadline = time.monotonic() + 3
    left = 'gateway_requests_total{backend="stable",code="499",model="support-chat",version="3"} 1.0'
    while left not in gw.metrics():
        assert time.monotonic() < deadline, "the gateway did not notice the client leave"
        time.sleep(0.05)
    assert 'gateway_inflight_requests{model="support-chat"} 0.0' in gw.metrics()
    # A reader that stays gets every event, each as the backend sends it (1.8 s in all).
    full = list(client.chat.completions.create(model="support-chat", messages=MESSAGES, stream=True))
    assert (
        "".join(c.choices[0].delta.content or "" for c in full)
        == "Thanks for reaching out! Your order has shipped."
    )
