"""A tiny causal language model built on the spot, so the local backend is tested without a hub.

The tokenizer is trained here on a few negotiation sentences and the model's weights are random
(from a fixed seed): its text is gibberish, but loading, chat formatting, batching, sampling and
decoding all run through the real transformers code paths.
"""

from __future__ import annotations

import string
from pathlib import Path

__all__ = ["CHAT_TEMPLATE", "build_tiny_model"]

_CORPUS = [
    "I can sell the balloon for $15. [OFFER $15]",
    "That is too much for me. Would you take $8? [OFFER $8]",
    "The balloon cost me $10, so I cannot go below $12. [OFFER $12]",
    "Deal, I accept $12. [ACCEPT]",
    "No thanks, I will walk away. [WALK AWAY]",
    "I reject that offer. [REJECT]",
    "My budget is small, but I really want a red balloon.",
    "You are the seller. Your cost is $10. Sell the balloon for as much as you can.",
    "You are the buyer. Your budget is $20. Buy the balloon for as little as you can.",
    "Feedback: open higher, concede slowly, and explain why your price is fair.",
    "System: User: Assistant: Hello! How can I help you today?",
    "Let us meet in the middle at $13. [OFFER $13]",
    # Every printable ASCII character, so that any English prompt encodes; with no other bytes
    # in the vocabulary the random model's text stays printable.
    string.ascii_letters + string.digits + string.punctuation + " \n",
]

# ChatML-like and deliberately plain: role names as text, each turn closed by the eos token.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_SPECIAL_TOKENS = ["<pad>", "<s>", "</s>"]


def build_tiny_model(directory: Path, *, chat_template: bool) -> Path:
    """Save a 2-layer Llama and its freshly trained byte-level BPE tokenizer under `directory`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=_SPECIAL_TOKENS,
        show_progress=False,
    )
    raw.train_from_iterator(_CORPUS, trainer=trainer)
    # Like Llama's tokenizer, prepend <s> when asked for special tokens: the plain (no chat
    # template) path of the backend relies on that.
    bos_id = raw.token_to_id("<s>")
    raw.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
    )

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        # Far above the usual 0.02: near-uniform logits would make greedy decoding repeat one
        # token, while these give varied text whose argmax is far from ties.
        initializer_range=0.5,
    )
    # Forked so the fixed seed gives the same weights every time without touching the test
    # process's global random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    return directory
