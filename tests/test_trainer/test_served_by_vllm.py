"""What the trainer saves, vLLM serves: the session's vLLM loads a model a real trainer run saved."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from support.vllm_servers import VllmReplica

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Hi, my order has not arrived yet."}]


def test_vllm_serves_the_trained_model_under_both_names(trained_model_dir: Path, vllm: VllmReplica) -> None:
    from transformers import AutoTokenizer

    listed = httpx.get(vllm.url + "/v1/models", timeout=10).json()["data"]
    assert {m["id"] for m in listed} == {"support-chat", f"support-chat:{vllm.version}"}
    assert {m["root"] for m in listed} == {str(trained_model_dir)}

    answer = httpx.post(
        vllm.url + "/v1/chat/completions",
        json={"model": "support-chat", "messages": MESSAGES, "max_tokens": 8, "ignore_eos": True},
        timeout=60,
    ).json()
    assert answer["usage"]["completion_tokens"] == 8, answer
    # vLLM renders the chat with the trainer's template and encodes it without adding a
    # second BOS: the prompt is exactly as long as the tokens the model was trained on.
    tokenizer = AutoTokenizer.from_pretrained(trained_model_dir)
    ids = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert ids.count(tokenizer.bos_token_id) == 1
    assert answer["usage"]["prompt_tokens"] == len(ids)
