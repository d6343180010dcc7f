"""The gateway in front of real vLLM servers: a client that leaves, a replica that dies under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from support.vllm_servers import VllmReplica, serve_like_dev

API_KEY = "test-key-1"  # written into the keys file by the gateway fixture

pytestmark = pytest.mark.slow

RUNNING = "vllm:num_requests_running"
GENERATED = "vllm:generation_tokens_total"


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)


def _wait_for(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_client_that_leaves_a_stream_stops_generation_in_vllm(gateway, vllm: VllmReplica) -> None:  # type: ignore[no-untyped-def]
    gw = gateway({"stable": (vllm.url, 100)})
    assert _wait_for(lambda: vllm.metric(RUNNING) == 0, 30), "vLLM is busy before the test"
    generated_before = vllm.metric(GENERATED)
    # Four sequences as long as the tiny model's 4096-token context allows. vLLM decodes the
    # tiny model faster than a busy machine streams it out (about 1,300 tokens were made here
    # by the time the client read its fifth chunk), so one sequence could end before the abort
    # lands; four in one batch take tens of seconds on two cores.
    sequences, max_tokens = 4, 4064
    stream = _client(gw.url).completions.create(
        model="support-chat",
        prompt="my order",
        max_tokens=max_tokens,
        n=sequences,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    pieces = []
    for chunk in stream:
        pieces.append(chunk.choices[0].text)
        if len(pieces) == 5:
            break
    stream.close()  # the client goes away mid-stream

    # No gauge reading while the stream is open: vLLM's API server, busy streaming, answered
    # /metrics seconds late here. Once the client has left, it answers at once.
    assert _wait_for(lambda: vllm.metric(RUNNING) == 0, 30), "vLLM still generates for a client that left"
    generated = vllm.metric(GENERATED) - generated_before
    # How many tokens vLLM makes before the abort lands depends on the machine's load; a request
    # that was not aborted runs every sequence to max_tokens.
    assert 5 <= generated < sequences * max_tokens, (
        f"vLLM generated {generated:.0f} of {sequences * max_tokens} tokens: the request was not aborted"
    )


@pytest.fixture(scope="module")
def second_replica(
    trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VllmReplica]:
    """A second vLLM over the same model, as a Deployment's second pod; the test may kill it."""
    with serve_like_dev(trained_model_dir, tmp_path_factory.mktemp("replica-b") / "vllm.log") as replica:
        yield replica


def test_a_replica_killed_under_load_fails_no_request(
    gateway,  # type: ignore[no-untyped-def]
    vllm: VllmReplica,
    second_replica: VllmReplica,
) -> None:
    gw = gateway({"a": (vllm.url, 50), "b": (second_replica.url, 50)})
    # Non-streamed requests: vLLM sends the response headers with the whole answer, so a request
    # on the killed replica fails before any byte reached the client and the gateway may retry
    # it on the other replica. (A stream already under way cannot be replayed by any proxy.)
    body = {"model": "support-chat", "prompt": "where is my refund", "max_tokens": 24}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    outcomes: list[int | str] = []
    served_by: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                try:
                    answer = http.post(gw.url + "/v1/completions", json=body, headers=headers)
                    outcomes.append(answer.status_code)
                    served_by.append(answer.headers.get("x-gateway-backend", "?"))
                except httpx.HTTPError as exc:
                    outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert _wait_for(lambda: {"a", "b"} <= set(served_by), 60), f"not both replicas served: {served_by}"
    second_replica.server.kill()  # SIGKILL, API server and engine at once: a node that vanished
    killed_at = len(outcomes)
    assert _wait_for(lambda: len(outcomes) >= killed_at + 40, 120), "the load stalled after the kill"
    stop.set()
    for thread in threads:
        thread.join(60)

    failed = [o for o in outcomes if o != 200]
    assert not failed, f"{len(failed)} of {len(outcomes)} requests failed: {failed[:10]}"
    assert served_by[-20:] == ["a"] * 20, "requests still went to the dead replica"
