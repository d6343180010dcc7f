"""Which replica of a backend takes a request: least outstanding, with prefix affinity on top.

Least outstanding requests: the replica with the fewest requests in flight from this gateway
process (ties broken at random), so a replica that KEDA just added, or one that answers
faster, takes more. Prefix affinity: a request's conversation (``affinity_key``) maps to a
replica by rendezvous hashing (each replica scores ``mix(key, replica)``, the highest wins),
so a conversation's turns land where its KV cache already is, and a replica joining or leaving
moves only the conversations it wins or held. The load is bounded (Mirrokni, Thorup and
Zadimoghaddam, "Consistent Hashing with Bounded Loads", 2018): a replica takes a request only
while its in-flight count stays under ``ceil(c * (total + 1) / n)`` (and always while under
``BOUND_FLOOR``); otherwise the request
goes to the highest-scoring replica under the bound (a "spill"), so a hot conversation or an
unlucky hash cannot pile requests onto one replica while others idle.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from typing import Any

import orjson

from gateway.replica import AFFINITY, LEAST, SPILL, Replica

# For /v1/completions (one prompt string): the first this many characters are the key. Long
# enough to hold a system prompt and the start of a conversation, short enough to be cheap.
COMPLETION_PREFIX_CHARS = 2048
_MASK = (1 << 64) - 1
# Below this many requests in flight a replica never counts as over the bound: with three or
# more replicas and one request in flight, ceil(c * (total + 1) / n) is 1, which would send a
# second conversation away from its replica although nothing is loaded. Kept small because
# a burst of new conversations should still spread: a replica prefills one prompt at a time.
BOUND_FLOOR = 2


def affinity_key(request: dict[str, Any]) -> int | None:
    """A 64-bit key naming the request's conversation, or None when it has none.

    Chat: the messages up to and including the first user message: the system prompt and
    the opening question, which every later turn of the conversation repeats unchanged, so
    every turn gets the same key, while two users with the same system prompt get different
    ones (keying on the system prompt alone would send every user to one replica). vLLM's
    prefix cache then holds the conversation's history on that replica and each new turn
    prefills only what is new. Completions: the prompt's first ``COMPLETION_PREFIX_CHARS``.
    """
    messages = request.get("messages")
    if isinstance(messages, list) and messages:
        end = len(messages)
        for index, message in enumerate(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                end = index + 1
                break
        try:
            material = orjson.dumps(messages[:end])
        except TypeError:
            return None
    else:
        prompt = request.get("prompt")
        if isinstance(prompt, list) and prompt:
            prompt = prompt[0]
        if not isinstance(prompt, str) or not prompt:
            return None
        material = prompt[:COMPLETION_PREFIX_CHARS].encode()
    # blake2b, not hash(): every worker and every gateway pod must map a conversation alike.
    return int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "little")


def _mix(value: int) -> int:
    """splitmix64's finaliser: spreads key ^ replica over 64 bits."""
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & _MASK
    return value ^ (value >> 31)


def _available(replicas: list[Replica]) -> list[Replica]:
    now = time.monotonic()
    healthy = [r for r in replicas if r.ejected_until <= now]
    return healthy or replicas


def least_outstanding(replicas: list[Replica]) -> Replica:
    """The replica with the fewest requests in flight (ties at random)."""
    candidates = _available(replicas)
    fewest = min(r.inflight for r in candidates)
    tied = [r for r in candidates if r.inflight == fewest]
    return tied[0] if len(tied) == 1 else random.choice(tied)


def choose(replicas: list[Replica], key: int | None, load_factor: float | None) -> tuple[Replica, str]:
    """The replica for one request and how it was chosen (LEAST, AFFINITY or SPILL).

    ``load_factor`` None: least outstanding. Otherwise prefix affinity for ``key`` bounded by
    ``load_factor`` x the mean in-flight count (a request without a key: least outstanding).
    """
    if len(replicas) == 1:
        return replicas[0], LEAST
    if load_factor is None or key is None:
        return least_outstanding(replicas), LEAST
    candidates = _available(replicas)
    total = sum(r.inflight for r in candidates)
    bound = max(BOUND_FLOOR, math.ceil(load_factor * (total + 1) / len(candidates)))
    best = best_under = None
    best_score = best_under_score = -1
    for replica in candidates:
        score = _mix(key ^ replica.token)
        if score > best_score:
            best, best_score = replica, score
        if replica.inflight < bound and score > best_under_score:
            best_under, best_under_score = replica, score
    # The least loaded replica is always under the bound (bound > mean >= minimum).
    assert best is not None and best_under is not None
    return best_under, AFFINITY if best_under is best else SPILL
