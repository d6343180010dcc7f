"""The synthetic dataset, its content hash and held-out split, and the tiny tokenizer's chat format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    examples = data.chat_examples(conversations, tokenizer, 192)
    assert len(examples) == len(conversations)
    assert (examples.input_ids[:, 0] == tokenizer.bos_token_id).all()
    assert int((examples.input_ids == tokenizer.bos_token_id).sum()) == len(conversations)


def _tokenizer(conversations: list[data.Conversation]) -> Any:
    from trainer import tiny

    return tiny.train_tokenizer([m["content"] for c in conversations for m in c["messages"]])


def test_loss_sees_the_answers_and_never_the_system_prompt() -> None:
    conversations = data.synthetic_conversations(40, seed=2)
    tokenizer = _tokenizer(conversations)
    examples = data.chat_examples(conversations, tokenizer, 192)
    assert examples.truncated == 0
    for row, conversation in enumerate(conversations):
        length = int(examples.lengths[row])
        labels = examples.labels[row]
        trained = labels[labels != data.IGNORE_INDEX]
        # The labelled tokens decode to exactly the assistant's turns, each with its end of turn.
        answers = [m["content"] for m in conversation["messages"] if m["role"] == "assistant"]
        assert tokenizer.decode(trained).replace("\n", "") == "".join(f"{a}</s>" for a in answers)
        assert data.SYSTEM_PROMPT not in tokenizer.decode(trained)
        # Everything before the first answer (system prompt, question, headers) and the padding
        # is ignored; where a token is labelled, its label is the token itself.
        first = tokenizer.decode(examples.input_ids[row, :length]).index("<|assistant|>")
        prompt = tokenizer(
            tokenizer.decode(examples.input_ids[row, :length])[:first], add_special_tokens=False
        )
        assert (labels[: len(prompt["input_ids"])] == data.IGNORE_INDEX).all()
        assert (labels[length:] == data.IGNORE_INDEX).all()
        assert (examples.input_ids[row, length:] == tokenizer.pad_token_id).all()
        kept = labels != data.IGNORE_INDEX
        assert (labels[kept] == examples.input_ids[row][kept]).all()


def test_a_model_that_only_echoes_the_system_prompt_gains_nothing_from_it() -> None:
    """The loss of a row is unchanged when the system prompt's tokens are predicted perfectly."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    conversations = data.synthetic_conversations(8, seed=5)
    tokenizer = _tokenizer(conversations)
    examples = data.chat_examples(conversations, tokenizer, 192)
    input_ids, labels = examples.batch(torch.arange(len(examples)))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    logits = model(input_ids=input_ids).logits.detach()
    loss = model.loss_function(logits, labels, vocab_size=config.vocab_size)
    # Predict every token of the system turn (BOS up to the first <|user|>) certainly and rightly,
    # as a model that learnt to echo the system prompt does: the loss must not move.
    user = tokenizer.convert_tokens_to_ids("<|user|>")
    echoing = logits.clone()
    for row in range(len(examples)):
        end = int((input_ids[row] == user).nonzero()[0])
        positions = torch.arange(0, end - 1)  # logits at t predict token t + 1
        echoing[row, positions, input_ids[row, positions + 1]] = 1e4
    assert float(model.loss_function(echoing, labels, vocab_size=config.vocab_size)) == float(loss)
    # The same certainty on the first answer's tokens does lower it: the check can tell.
    answering = logits.clone()
    for row in range(len(examples)):
        positions = (labels[row, 1:] != data.IGNORE_INDEX).nonzero()[:, 0]
        answering[row, positions, input_ids[row, positions + 1]] = 1e4
    assert float(model.loss_function(answering, labels, vocab_size=config.vocab_size)) < float(loss) / 10


def test_a_conversation_cut_before_its_answer_is_left_out() -> None:
    conversations = data.synthetic_conversations(20, seed=1)
    tokenizer = _tokenizer(conversations)
    # 40 tokens hold the system prompt and part of the question, never an answer.
    with pytest.raises(TrainerError, match=r"none of the split's 20 conversations has an assistant token "
                       r"within --seq-len 40; give a longer --seq-len"):  # fmt: skip
        data.chat_examples(conversations, tokenizer, 40)
    examples = data.chat_examples(conversations, tokenizer, 100)
    assert examples.truncated > 0
    assert len(examples) + examples.left_out == len(conversations)
    assert examples.input_ids.shape[1] == 100


def test_the_demo_chats_with_the_system_prompt_the_model_trained_on() -> None:
    from mlops.local import demo

    assert demo.SYSTEM_PROMPT == data.SYSTEM_PROMPT
