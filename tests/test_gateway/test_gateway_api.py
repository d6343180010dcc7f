"""The gateway as a client sees it, through the official openai client, in front of a real vLLM."""

from __future__ import annotations

import re
import time

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory, vllm, start_gateway):  # type: ignore[no-untyped-def]
    """One gateway in front of the session's vLLM, shared by the tests that only read from it."""
    gw = start_gateway(tmp_path_factory.mktemp("live") / "gateway", {"stable": (vllm.url, 100)})
    yield gw
    gw.stop()


API_KEY = "test-key-1"  # written into the keys file by the gateway fixture


def _client(gw, key: str = API_KEY) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    # max_retries=0: a failure must show, not be papered over by the client.
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=30)


def test_chat_completion_generates_through_the_gateway(live, vllm) -> None:  # type: ignore[no-untyped-def]
    raw = _client(live).chat.completions.with_raw_response.create(
        model="support-chat",
        messages=[{"role": "user", "content": "hello my order was shipped"}],
        max_tokens=8,
        temperature=0,
    )
    completion = raw.parse()
    assert completion.model == "support-chat"
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert completion.usage.prompt_tokens > 0
    # The version vLLM lists on /v1/models (`support-chat:<version>`, from the dev overlay's
    # model-version.yaml), not one written into the routes.
    assert raw.headers["x-model-version"] == vllm.version
    assert raw.headers["x-gateway-backend"] == "stable"


def test_chat_completion_streams_through_the_gateway(live) -> None:  # type: ignore[no-untyped-def]
    stream = _client(live).chat.completions.create(
        model="support-chat",
        messages=[{"role": "user", "content": "where is my delivery"}],
        max_tokens=8,
        temperature=0,
        stream=True,
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len([p for p in pieces if p]) >= 2  # text arrived in several events
    # Greedy decoding: the stream carries the same text as a non-streamed answer.
    whole = _client(live).chat.completions.create(
        model="support-chat",
        messages=[{"role": "user", "content": "where is my delivery"}],
        max_tokens=8,
        temperature=0,
    )
    assert "".join(pieces) == whole.choices[0].message.content


def test_text_completion_streaming_and_not(live) -> None:  # type: ignore[no-untyped-def]
    client = _client(live)
    whole = client.completions.create(model="support-chat", prompt="thanks for", max_tokens=6, temperature=0)
    assert whole.choices[0].text
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model="support-chat", prompt="thanks for", max_tokens=6, temperature=0, stream=True
        )
        if c.choices
    )
    assert streamed == whole.choices[0].text


def test_unknown_model_is_404_in_openai_shape(live) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.NotFoundError) as caught:
        _client(live).chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 404
    assert caught.value.code == "model_not_found"
    assert "no-such-model" in caught.value.message


@pytest.mark.parametrize("key", ["wrong-key", ""])
def test_bad_key_is_401_in_openai_shape(live, key: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.AuthenticationError) as caught:
        _client(live, key=key or "x").chat.completions.create(
            model="support-chat", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        _client(live, key=key or "x").models.list()


def test_body_over_the_limit_is_413_in_openai_shape(live) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.APIStatusError) as caught:
        _client(live).chat.completions.create(
            model="support-chat",
            messages=[{"role": "user", "content": "help " * 20_000}],  # ~100 KB > 64 KiB
        )
    assert caught.value.status_code == 413
    assert caught.value.code == "request_too_large"


def test_models_lists_routed_models_with_backend_versions(live, vllm) -> None:  # type: ignore[no-untyped-def]
    models = _client(live).models.list()
    assert [m.id for m in models.data] == ["support-chat"]
    assert models.data[0].model_extra["backends"][0]["version"] == vllm.version  # type: ignore[index]


def test_metrics_carry_model_and_version(gateway, vllm) -> None:  # type: ignore[no-untyped-def]
    live = gateway({"stable": (vllm.url, 100)})  # fresh counters
    client = _client(live)
    client.chat.completions.create(
        model="support-chat", messages=[{"role": "user", "content": "hello"}], max_tokens=4
    )
    list(
        client.chat.completions.create(
            model="support-chat",
            messages=[{"role": "user", "content": "hello"}],
            max_tokens=4,
            stream=True,
            extra_body={"ignore_eos": True},  # four tokens, so the stream has inter-token gaps
        )
    )
    text = live.metrics()
    labels = f'backend="stable",model="support-chat",version="{vllm.version}"'
    requests = (
        f'gateway_requests_total{{backend="stable",code="200",model="support-chat",version="{vllm.version}"}}'
    )
    assert re.search(re.escape(requests) + r" 2\.0", text)
    assert f"gateway_request_duration_seconds_count{{{labels}}} 2.0" in text
    assert f"gateway_time_to_first_token_seconds_count{{{labels}}} 2.0" in text
    # Only the streamed answer has an inter-token latency.
    assert f"gateway_inter_token_latency_seconds_count{{{labels}}} 1.0" in text
    for kind in ("prompt", "completion"):
        tokens = f'gateway_tokens_total{{model="support-chat",type="{kind}",version="{vllm.version}"}}'
        assert re.search(re.escape(tokens) + r" [1-9]", text), kind
    assert 'gateway_inflight_requests{model="support-chat"} 0.0' in text


def test_health_and_readiness(gateway, fixed_backend) -> None:  # type: ignore[no-untyped-def]
    backend = fixed_backend("1")
    gw = gateway({"stable": (backend.url, 1)})
    assert httpx.get(gw.url + "/health").status_code == 200
    assert httpx.get(gw.url + "/ready").status_code == 200
    backend.kill()
    deadline = time.monotonic() + 5
    while httpx.get(gw.url + "/ready").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    ready = httpx.get(gw.url + "/ready")
    assert ready.status_code == 503
    assert ready.json()["problems"] == ["no backend is reachable"]
    assert httpx.get(gw.url + "/health").status_code == 200  # alive, just not ready


def test_new_api_key_is_accepted_after_the_secret_changes(gateway, fixed_backend) -> None:  # type: ignore[no-untyped-def]
    gw = gateway({"stable": (fixed_backend("1").url, 1)})
    new = gw.keys_file.with_suffix(".new")
    new.write_text("rotated-key\n")
    new.replace(gw.keys_file)
    deadline = time.monotonic() + 5
    while True:
        try:
            _client(gw, key="rotated-key").models.list()
            break
        except openai.AuthenticationError:
            assert time.monotonic() < deadline, "the rotated key was never accepted"
            time.sleep(0.1)
    with pytest.raises(openai.AuthenticationError):
        _client(gw).models.list()  # the old key is gone
