"""The synthetic dataset, its content hash and held-out split, and the tiny tokenizer's chat format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trainer import data
from trainer.errors import TrainerError


def test_synthetic_dataset_is_deterministic(tmp_path: Path) -> None:
    a = data.write_jsonl(data.synthetic_conversations(50, seed=3), tmp_path / "a.jsonl")
    b = data.write_jsonl(data.synthetic_conversations(50, seed=3), tmp_path / "b.jsonl")
    c = data.write_jsonl(data.synthetic_conversations(50, seed=4), tmp_path / "c.jsonl")
    assert data.content_hash(a) == data.content_hash(b) != data.content_hash(c)
    records = data.load_jsonl(a, str(a))
    assert len(records) == 50
    assert {m["role"] for r in records for m in r["messages"]} == {"system", "user", "assistant"}


def test_held_out_split_depends_on_content_not_order() -> None:
    conversations = data.synthetic_conversations(400, seed=0)
    train, held_out = data.split(conversations, 0.1)
    assert len(train) + len(held_out) == 400
    assert 10 < len(held_out) < 80
    ids = {c["id"] for c in held_out}
    assert not ids & {c["id"] for c in train}
    _, reversed_held_out = data.split(list(reversed(conversations)), 0.1)
    assert {c["id"] for c in reversed_held_out} == ids


def test_bad_jsonl_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n{oops\n")
    with pytest.raises(TrainerError, match=r"chats.jsonl line 2: not JSON"):
        data.load_jsonl(path, str(path))
    path.write_text("\n")
    with pytest.raises(TrainerError, match="no conversations"):
        data.load_jsonl(path, str(path))


def test_chat_template_emits_exactly_one_bos() -> None:
    from trainer import tiny

    conversations = data.synthetic_conversations(60, seed=1)
    tokenizer = tiny.train_tokenizer([m["content"] for c in conversations for m in c["messages"]])
    rendered = tokenizer.apply_chat_template(conversations[0]["messages"], tokenize=False)
    assert rendered.startswith(tokenizer.bos_token)
    # apply_chat_template encodes without special tokens: the template's BOS is the only one.
    ids = tokenizer.apply_chat_template(conversations[0]["messages"], tokenize=True, return_dict=True)[
        "input_ids"
    ]
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id
    # Plain text (a completions prompt) gets BOS from the tokenizer instead.
    assert tokenizer("Hello")["input_ids"][0] == tokenizer.bos_token_id
    # Training text is encoded the same way: one BOS per conversation, never two.
    blocks = data.token_blocks(conversations, tokenizer, 32)
    assert blocks.shape[1] == 32 and int(blocks[0, 0]) == tokenizer.bos_token_id
    assert len(conversations) - 1 <= int((blocks == tokenizer.bos_token_id).sum()) <= len(conversations)
