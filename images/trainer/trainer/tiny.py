"""The `--base-model tiny` model: a random-initialised small Llama and a BPE tokenizer trained locally.

Nothing is downloaded: the tokenizer is trained on the training conversations, the weights are
random. The chat template starts with ``{{ bos_token }}`` and the tokenizer also adds BOS when
it encodes plain text, so every consumer must encode a rendered chat with
``add_special_tokens=False`` (as transformers' ``apply_chat_template`` and vLLM's chat endpoint do)
to get exactly one BOS.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    from trainer.data import Conversation

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"

#: Llama-style chat template: BOS once, `<|role|>` headers, EOS after each turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

#: Dimensions of the tiny model: small enough for a few CPU steps in a test, and a shape vLLM
#: serves: its CPU attention kernels refuse head_dim 16 (the GPU ones want a multiple of 32), so
#: two heads of 64 (hidden_size / num_attention_heads) rather than four of 16.
TINY_DIMS = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
}
#: The context the tiny model declares. Llama's rotary positions carry no weights, so a long
#: context costs nothing; it is at least the `--max-model-len` the model Deployments pass vLLM
#: (SERVE_MAX_MODEL_LEN), which vLLM refuses above the model's `max_position_embeddings`.
TINY_CONTEXT = 4096
TINY_VOCAB_SIZE = 512


def train_tokenizer(texts: Sequence[str], vocab_size: int = TINY_VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, UNK, "<|system|>", "<|user|>", "<|assistant|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, core.token_to_id(BOS))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(tokenizer: PreTrainedTokenizerFast, max_positions: int, seed: int) -> LlamaForCausalLM:
    """A random-initialised Llama with TINY_DIMS, sized to the tokenizer; the same seed, the same weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        hidden_size=TINY_DIMS["hidden_size"],
        intermediate_size=TINY_DIMS["intermediate_size"],
        num_hidden_layers=TINY_DIMS["num_hidden_layers"],
        num_attention_heads=TINY_DIMS["num_attention_heads"],
        num_key_value_heads=TINY_DIMS["num_key_value_heads"],
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def build(
    conversations: Sequence[Conversation], max_positions: int, seed: int
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """Tokenizer trained on ``conversations`` (their user/assistant text) and the tiny model."""
    texts = [m["content"] for c in conversations for m in c["messages"]]
    tokenizer = train_tokenizer(texts)
    return build_model(tokenizer, max_positions, seed), tokenizer


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trainer.tiny --out DIR``: save the tiny base model in Hugging Face format."""
    from trainer.data import synthetic_conversations

    parser = argparse.ArgumentParser(prog="trainer.tiny", description=main.__doc__)
    parser.add_argument("--out", required=True, type=Path, help="directory to write")
    parser.add_argument("--seed", type=int, default=0, help="seed for the corpus and weights (default: 0)")
    parser.add_argument(
        "--max-positions", type=int, default=TINY_CONTEXT, help=f"context length (default: {TINY_CONTEXT})"
    )
    args = parser.parse_args(argv)
    model, tokenizer = build(synthetic_conversations(600, args.seed), args.max_positions, args.seed)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    print(f"wrote the tiny base model to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
