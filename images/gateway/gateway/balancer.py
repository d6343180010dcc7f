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

Two refinements, both about where a conversation's KV cache really is:

- An *opening* turn (the messages end at the first user message) has nothing of its own cached
  anywhere yet (the shared system prompt is on every replica that served anyone), so it may go
  where the load is lowest at no cache cost: it takes its rendezvous replica unless that one has
  more than ``OPENING_SLACK`` requests in flight above the least loaded, else the least loaded.
  A burst of new conversations then splits evenly instead of by the luck of the hash.
- Each backend remembers where this process sent a conversation's last turn (``Placements``,
  bounded, least recently used first out). The next turn goes there (while under the bound) only
  if this process served the turn just before it (the request holds exactly one more exchange
  than the remembered one). Otherwise another gateway process or pod served the turns between,
  and it, knowing nothing of this memory, sent them to the rendezvous replica: so does this one.
  A conversation placed away from its hash (an opening by load, a spill) therefore stays with its
  cache while one process serves it, and with several processes converges on its hash replica
  after at most one cold turn instead of bouncing between the two.

Canary weights choose the backend before any of this (``backend_point``): a conversation's key,
not a fresh random number, picks its point in the cumulative weights, so every turn of it goes
to the same backend (and model version) in every process, and raising the canary's weight moves
only the conversations whose point the new weight covers.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections import OrderedDict
from typing import Any, NamedTuple

import orjson

from gateway.replica import AFFINITY, LEAST, SPILL, Replica

# For /v1/completions (one prompt string): the first this many characters are the key. Long
# enough to hold a system prompt and the start of a conversation, short enough to be cheap.
COMPLETION_PREFIX_CHARS = 2048
_MASK = (1 << 64) - 1
_BACKEND_SALT = 0x6A09E667F3BCC908  # any constant: the backend draw must not echo the replica draw
# Below this many requests in flight a replica never counts as over the bound: with three or
# more replicas and one request in flight, ceil(c * (total + 1) / n) is 1, which would send a
# second conversation away from its replica although nothing is loaded. Kept small because
# a burst of new conversations should still spread: a replica prefills one prompt at a time.
BOUND_FLOOR = 2
# An opening turn keeps its rendezvous replica unless that one has more than this many requests
# in flight above the least loaded. Small enough to stop the split that lost throughput (16
# new conversations hashed 10/6 onto two replicas), large enough that most openings still land
# on their hash replica: an opening placed by load is known only to the process that placed it,
# and every other gateway process sends the next turns to the hash replica. (1 kept bursts within
# two requests of even, but moved a third of openings off their hash and measured no better.)
OPENING_SLACK = 3
# Conversations a backend remembers (where each was last served); a vLLM replica's KV cache holds
# far fewer conversations than this, so an older entry has nothing cached left to return to.
REMEMBERED = 16384


class Conversation(NamedTuple):
    """What routing knows of a request's conversation."""

    key: int
    """64 bits naming the conversation (``affinity_key``)."""
    opening: bool
    """The request is the conversation's first turn: nothing of it is cached on any replica."""
    length: int = 0
    """How many messages the request holds (0 for a completion): a turn adds two (the answer
    before it and the new question), which tells whether this process served the last turn."""


class Placements:
    """Where this process sent each conversation of one backend last, and how long it was then.

    key -> (replica address, message count), bounded, least recently served forgotten first.
    """

    __slots__ = ("_where", "size")

    def __init__(self, size: int = REMEMBERED) -> None:
        self._where: OrderedDict[int, tuple[str, int]] = OrderedDict()
        self.size = size

    def get(self, key: int) -> tuple[str, int] | None:
        """(address, message count) of the turn of ``key`` this process served last, or None."""
        return self._where.get(key)

    def put(self, key: int, address: str, length: int = 0) -> None:
        """Remember that ``address`` served ``key`` at ``length`` messages (the oldest goes when full)."""
        self._where[key] = (address, length)
        self._where.move_to_end(key)
        if len(self._where) > self.size:
            self._where.popitem(last=False)

    def __len__(self) -> int:
        return len(self._where)


def conversation(request: dict[str, Any]) -> Conversation | None:
    """The request's conversation (its key, whether this is its opening turn), or None.

    Only a chat request can be told to be an opening (its messages end at the first user
    message); a completion's prompt never is.
    """
    key = affinity_key(request)
    if key is None:
        return None
    messages = request.get("messages")
    if not isinstance(messages, list):
        return Conversation(key, False, 0)
    return Conversation(key, _first_user(messages) == len(messages), len(messages))


def backend_point(talk: Conversation | None) -> float | None:
    """Where in [0, 1) of a model's cumulative canary weights this conversation falls (None: at random).

    From the key, so every turn picks the same backend in every gateway process; mixed with a
    constant so that it is independent of the replica the same key wins inside a backend.
    """
    if talk is None:
        return None
    return _mix(talk.key ^ _BACKEND_SALT) / 2.0**64


def _first_user(messages: list[Any]) -> int:
    """How many messages run up to and including the first user message (all of them if none)."""
    for index, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return index + 1
    return len(messages)


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
        try:
            material = orjson.dumps(messages[: _first_user(messages)])
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


def choose(
    replicas: list[Replica],
    talk: Conversation | None,
    load_factor: float | None,
    placements: Placements | None = None,
) -> tuple[Replica, str]:
    """The replica for one request and how it was chosen (LEAST, AFFINITY or SPILL).

    ``load_factor`` None: least outstanding. Otherwise prefix affinity for ``talk`` bounded by
    ``load_factor`` x the mean in-flight count (a request without a conversation: least
    outstanding): where this process sent its previous turn (``placements``), else its rendezvous
    replica, an opening turn balanced by ``OPENING_SLACK``. The choice is remembered in
    ``placements``, also with a single replica, so that conversations stay where their cache is
    when a second replica joins (only new ones go to it).
    """
    if load_factor is None or talk is None:
        return (replicas[0] if len(replicas) == 1 else least_outstanding(replicas)), LEAST
    if len(replicas) == 1:
        chosen, how = replicas[0], AFFINITY
    else:
        candidates = _available(replicas)
        total = sum(r.inflight for r in candidates)
        bound = max(BOUND_FLOOR, math.ceil(load_factor * (total + 1) / len(candidates)))
        chosen, how = _remembered(candidates, talk, bound, placements), AFFINITY
        if chosen is None:
            chosen, how = _hashed(candidates, talk, bound)
    if placements is not None:
        placements.put(talk.key, chosen.address, talk.length)
    return chosen, how


def _remembered(
    candidates: list[Replica], talk: Conversation, bound: int, placements: Placements | None
) -> Replica | None:
    """Where this process sent the turn just before this one, if that replica is here and under the bound.

    Only the turn just before: a longer gap means other processes served the turns between, and
    they (without this memory) sent them to the rendezvous replica, where the history now is.
    """
    seen = placements.get(talk.key) if placements is not None else None
    if seen is None:
        return None
    address, length = seen
    if talk.length and length + 2 != talk.length and length != talk.length:
        return None
    for replica in candidates:
        if replica.address == address:
            return replica if replica.inflight < bound else None
    return None


def _hashed(candidates: list[Replica], talk: Conversation, bound: int) -> tuple[Replica, str]:
    """Rendezvous hashing with bounded loads; an opening turn balanced within ``OPENING_SLACK``."""
    best = best_under = None
    best_score = best_under_score = -1
    for replica in candidates:
        score = _mix(talk.key ^ replica.token)
        if score > best_score:
            best, best_score = replica, score
        if replica.inflight < bound and score > best_under_score:
            best_under, best_under_score = replica, score
    # The least loaded replica is always under the bound (bound > mean >= minimum).
    assert best is not None and best_under is not None
    if talk.opening:
        if best.inflight > min(r.inflight for r in candidates) + OPENING_SLACK:
            return least_outstanding(candidates), LEAST
        return best, AFFINITY
    return best_under, AFFINITY if best_under is best else SPILL
