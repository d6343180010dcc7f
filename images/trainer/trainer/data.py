"""Chat datasets: the synthetic customer-support set, JSONL loading, content hash, held-out split.

Only the standard library is imported at module level; tokenisation imports torch lazily.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.errors import TrainerError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

Conversation = dict[str, Any]

_PRODUCTS = [
    "wireless headphones",
    "smart watch",
    "coffee maker",
    "laptop stand",
    "phone case",
    "desk lamp",
    "air purifier",
    "running shoes",
]
_PROBLEMS = {
    "late": (
        "my order of {product} has not arrived yet",
        "I am sorry your {product} is late. Order {order} is in transit and will arrive within "
        "two business days. I have sent you the tracking link.",
    ),
    "broken": (
        "the {product} I received is broken",
        "I am sorry the {product} arrived broken. I have started a free replacement for order "
        "{order}; it ships today and you do not need to return the broken one.",
    ),
    "refund": (
        "I want to return the {product} and get a refund",
        "Of course. I have opened a return for the {product} on order {order}. Print the label "
        "from your email, and the refund reaches your card within five days of the return.",
    ),
    "charged_twice": (
        "I was charged twice for the {product}",
        "I am sorry about the double charge for the {product}. I have refunded the second payment "
        "on order {order}; it shows on your statement within three days.",
    ),
    "address": (
        "I need to change the delivery address for my {product}",
        "No problem. Order {order} for the {product} has not shipped yet, so I have updated the "
        "address. You will get a confirmation email shortly.",
    ),
    "how_to": (
        "how do I set up the {product}",
        "To set up the {product}, charge it fully, hold the power button for three seconds and "
        "follow the steps in the app. The quick start guide for order {order} is in your email.",
    ),
}
_GREETINGS = ["Hi", "Hello", "Hey", "Good morning", "Good evening"]
_CLOSINGS = [
    ("Thanks for the help!", "You are welcome! Is there anything else I can help you with?"),
    ("Great, thank you.", "Happy to help. Have a nice day!"),
    ("Perfect.", "Glad I could help. Thank you for contacting support."),
]
SYSTEM_PROMPT = "You are a helpful customer support assistant for an online shop."


def synthetic_conversations(count: int, seed: int = 0) -> list[Conversation]:
    """Generate ``count`` customer-support chats; the same ``(count, seed)`` gives the same list."""
    rng = random.Random(seed)
    conversations = []
    for index in range(count):
        product = rng.choice(_PRODUCTS)
        kind = rng.choice(sorted(_PROBLEMS))
        question, answer = _PROBLEMS[kind]
        order = f"#{rng.randrange(10000, 99999)}"
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": f"{rng.choice(_GREETINGS)}, {question.format(product=product)}. "
                f"The order number is {order}.",
            },
            {"role": "assistant", "content": answer.format(product=product, order=order)},
        ]
        if rng.random() < 0.5:
            thanks, reply = rng.choice(_CLOSINGS)
            messages += [{"role": "user", "content": thanks}, {"role": "assistant", "content": reply}]
        conversations.append({"id": f"conv-{seed}-{index:06d}", "topic": kind, "messages": messages})
    return conversations


def write_jsonl(conversations: Sequence[Conversation], path: Path) -> Path:
    """Write one conversation per line (sorted keys, so the bytes, and the hash, are stable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for conversation in conversations:
            handle.write(json.dumps(conversation, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_hash(sha256_hex: str) -> str:
    """The dataset hash used for lineage: the first 32 hex digits (128 bits) of the SHA-256.

    MLflow stores a dataset digest in at most 36 characters, so the tag ``dataset_hash`` and the
    MLflow dataset digest both carry this prefix; the param ``dataset_sha256`` has all of it.
    """
    return sha256_hex[:32]


def load_jsonl(path: Path, source: str) -> list[Conversation]:
    """Read and check a chat JSONL file; ``source`` (the user's path or URI) names it in errors."""
    conversations = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainerError(f"dataset {source} line {number}: not JSON ({exc.msg})") from None
            messages = record.get("messages") if isinstance(record, dict) else None
            if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages
            ):
                raise TrainerError(
                    f"dataset {source} line {number}: expected an object with 'messages', a list of "
                    "{'role': str, 'content': str}"
                )
            conversations.append(record)
    if not conversations:
        raise TrainerError(f"dataset {source} has no conversations; give a JSONL file with one per line")
    return conversations


def is_held_out(conversation: Conversation, eval_fraction: float) -> bool:
    """Whether a conversation belongs to the held-out split: decided by its content, not its position."""
    key = json.dumps(conversation["messages"], sort_keys=True, ensure_ascii=False).encode("utf-8")
    bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
    return bucket < eval_fraction


def split(
    conversations: Sequence[Conversation], eval_fraction: float
) -> tuple[list[Conversation], list[Conversation]]:
    """Split into (train, held_out); both non-empty or a TrainerError saying what to change."""
    train = [c for c in conversations if not is_held_out(c, eval_fraction)]
    held_out = [c for c in conversations if is_held_out(c, eval_fraction)]
    if not train or not held_out:
        raise TrainerError(
            f"the dataset's {len(conversations)} conversations give {len(train)} for training and "
            f"{len(held_out)} held out at --eval-fraction {eval_fraction}; give more conversations "
            "or another fraction"
        )
    return train, held_out


#: The label transformers' causal-LM loss skips (``ignore_index`` of ``ForCausalLMLoss`` in
#: transformers/loss/loss_utils.py): every token that is not the assistant's carries it.
IGNORE_INDEX = -100


def chat_texts(conversations: Sequence[Conversation], tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Render each conversation with the tokenizer's chat template (the format vLLM serves)."""
    return [str(tokenizer.apply_chat_template(c["messages"], tokenize=False)) for c in conversations]


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]], prompt: bool) -> str:
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt))


def assistant_spans(
    messages: list[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, where: str
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered chat and the character spans the assistant writes in it.

    A turn's span runs from the end of the render up to it with the generation prompt
    (``<|assistant|>`` header and all) to the end of the render that includes it, so it holds
    what a served model generates: the answer and the template's end-of-turn token. This works
    with any chat template whose earlier turns render the same once later ones follow, which
    is checked; transformers' ``return_assistant_tokens_mask`` gives the same spans, but only
    for templates marked up with ``{% generation %}``, which most base models' are not.
    """
    text = _render(tokenizer, messages, prompt=False)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:index], prompt=True)
        through = _render(tokenizer, messages[: index + 1], prompt=False)
        if not (text.startswith(through) and through.startswith(before)):
            raise TrainerError(
                f"{where}: the chat template renders message {index} (assistant) differently once "
                "later messages follow, so its tokens cannot be told apart for the loss; use a "
                "base model whose chat template renders each turn the same"
            )
        spans.append((len(before), len(through)))
    return text, spans


@dataclass(frozen=True)
class ChatExamples:
    """One right-padded row per conversation; the loss sees only the assistant's tokens.

    ``labels`` is ``input_ids`` with IGNORE_INDEX on every system, user, template and padding
    token, so the system prompt that opens every conversation teaches the model nothing to say.
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor
    truncated: int
    left_out: int

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, labels)`` of the rows at ``indices``, cut to the longest of them.

        Padding follows a conversation's tokens and causal attention never looks forward, so the
        pads change no real token's logits and no attention mask is needed.
        """
        width = int(self.lengths[indices].max())
        return self.input_ids[indices, :width], self.labels[indices, :width]


def chat_examples(
    conversations: Sequence[Conversation], tokenizer: PreTrainedTokenizerBase, seq_len: int
) -> ChatExamples:
    """Tokenise each conversation on its own, at most ``seq_len`` tokens, labels on the assistant's.

    Conversations are never packed together: a block cut across two of them would show the model
    answers without their questions. A conversation cut at ``seq_len`` keeps the assistant tokens
    before the cut; one with none left is left out. The chat template already emits BOS, so the
    text is encoded without adding special tokens again.
    """
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows: list[list[int]] = []
    masks: list[list[bool]] = []
    truncated = left_out = 0
    for number, conversation in enumerate(conversations, start=1):
        where = f"conversation {conversation.get('id', number)}"
        text, spans = assistant_spans(conversation["messages"], tokenizer, where)
        try:
            encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        except NotImplementedError:
            raise TrainerError(
                "the tokenizer cannot map tokens to characters (a slow, Python tokenizer); give a "
                "base model with a fast tokenizer (tokenizer.json)"
            ) from None
        ids = list(encoded["input_ids"])
        # A token is the assistant's when it starts inside one of the assistant's spans.
        mask = [any(a <= start < b for a, b in spans) for start, _end in encoded["offset_mapping"]]
        if len(ids) > seq_len:
            truncated += 1
            ids, mask = ids[:seq_len], mask[:seq_len]
        if not any(mask[1:]):  # the first token is never a target: nothing comes before it
            left_out += 1
            continue
        rows.append(ids)
        masks.append(mask)
    if not rows:
        raise TrainerError(
            f"none of the split's {len(conversations)} conversations has an assistant token within "
            f"--seq-len {seq_len}; give a longer --seq-len or conversations with assistant turns"
        )
    input_ids = torch.full((len(rows), seq_len), pad, dtype=torch.long)
    labels = torch.full((len(rows), seq_len), IGNORE_INDEX, dtype=torch.long)
    for row, (ids, mask) in enumerate(zip(rows, masks, strict=True)):
        tokens = torch.tensor(ids, dtype=torch.long)
        input_ids[row, : len(ids)] = tokens
        labels[row, : len(ids)] = torch.where(torch.tensor(mask), tokens, IGNORE_INDEX)
    lengths = torch.tensor([len(ids) for ids in rows], dtype=torch.long)
    return ChatExamples(input_ids, labels, lengths, truncated, left_out)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trainer.data --out FILE``: write the synthetic dataset as JSONL."""
    parser = argparse.ArgumentParser(prog="trainer.data", description=main.__doc__)
    parser.add_argument("--out", required=True, type=Path, help="JSONL file to write")
    parser.add_argument("--conversations", type=int, default=600, help="how many (default: 600)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    args = parser.parse_args(argv)
    path = write_jsonl(synthetic_conversations(args.conversations, args.seed), args.out)
    print(f"wrote {args.conversations} conversations to {path} (sha256 {content_hash(path)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


@dataclass
class LoadedDataset:
    """A dataset the trainer fetched or generated: its records, content hash and held-out flags."""

    path: Path
    sha256: str
    conversations: list[dict[str, Any]]
    train: list[dict[str, Any]]
    held_out_flags: list[bool]
    synthetic: dict[str, Any] | None = None

    @property
    def hash(self) -> str:
        """The dataset's hash as the model version's `dataset_hash` tag records it."""
        return dataset_hash(self.sha256)

    @property
    def name(self) -> str:
        """The name MLflow's dataset input shows."""
        return "support-chat-synthetic" if self.synthetic else Path(self.path).stem
