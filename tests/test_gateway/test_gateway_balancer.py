"""The replica choice and the DNS answers it is built on, without processes: fast and exact."""

from __future__ import annotations

import collections

import pytest
from dnslib import CNAME, QTYPE, RR, A, DNSRecord
from gateway.balancer import (
    AFFINITY,
    LEAST,
    OPENING_SLACK,
    SPILL,
    Placements,
    affinity_key,
    backend_point,
    choose,
    conversation,
)
from gateway.dns_client import DnsError, parse_answer
from gateway.replica import Replica

SYSTEM = {"role": "system", "content": "You are the support assistant of an online shop."}


def _replicas(count: int) -> list[Replica]:
    return [Replica(f"10.0.0.{i}:8000", pool=None) for i in range(1, count + 1)]  # type: ignore[arg-type]


def _chat(user: int, turns: int) -> dict[str, object]:
    messages = [SYSTEM, {"role": "user", "content": f"I am user {user}"}]
    for turn in range(1, turns):
        messages += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": f"turn {turn}"}]
    return {"model": "support-chat", "messages": messages}


def _talk(user: int, turns: int):  # type: ignore[no-untyped-def]
    return conversation(_chat(user, turns))


def test_every_turn_of_a_conversation_has_its_key_and_users_differ() -> None:
    assert len({affinity_key(_chat(7, turns)) for turns in range(1, 6)}) == 1
    assert len({affinity_key(_chat(user, 1)) for user in range(50)}) == 50
    assert affinity_key({"model": "m", "prompt": "x" * 5000}) == affinity_key(
        {"model": "m", "prompt": "x" * 4000}
    )
    assert affinity_key({"model": "m"}) is None
    # Only a chat's first turn is an opening; a completion's prompt never is.
    assert [_talk(7, turns).opening for turns in range(1, 4)] == [True, False, False]
    assert conversation({"model": "m", "prompt": "x"}).opening is False  # type: ignore[union-attr]
    assert conversation({"model": "m"}) is None


def test_affinity_spreads_conversations_and_moves_only_the_leaving_replicas_share() -> None:
    replicas = _replicas(4)
    talks = [_talk(user, 2) for user in range(400)]
    placed = {t.key: choose(replicas, t, 1.25)[0].address for t in talks}
    per_replica = collections.Counter(placed.values())
    assert min(per_replica.values()) > 60, per_replica  # about 100 each
    survivors = replicas[:3]  # 10.0.0.4 leaves
    moved = [
        t
        for t in talks
        if placed[t.key] != "10.0.0.4:8000" and choose(survivors, t, 1.25)[0].address != placed[t.key]
    ]
    assert moved == []


def test_an_overloaded_replica_spills_to_the_next_in_its_order() -> None:
    replicas = _replicas(2)
    talk = _talk(1, 2)
    home, how = choose(replicas, talk, 1.25)
    assert how == AFFINITY
    home.inflight = 10
    other = next(r for r in replicas if r is not home)
    other.inflight = 2  # bound: ceil(1.25 * 13 / 2) = 9 <= 10
    assert choose(replicas, talk, 1.25) == (other, SPILL)
    home.inflight = 4  # bound: ceil(1.25 * 7 / 2) = 5 > 4: back home
    assert choose(replicas, talk, 1.25) == (home, AFFINITY)


@pytest.mark.parametrize("count", [2, 3, 4])
def test_a_burst_of_new_conversations_splits_evenly_not_by_the_hash(count: int) -> None:
    replicas = _replicas(count)
    placements = Placements()
    for user in range(10 * count):  # all arrive before any answer ends
        chosen, _ = choose(replicas, _talk(user, 1), 1.25, placements)
        chosen.inflight += 1
    loads = sorted(r.inflight for r in replicas)
    assert loads[-1] - loads[0] <= OPENING_SLACK + 1, loads


def test_a_conversation_stays_where_it_was_served_after_a_spill() -> None:
    replicas = _replicas(2)
    placements = Placements()
    talk = _talk(3, 2)
    home, _ = choose(replicas, talk, 1.25, placements)
    other = next(r for r in replicas if r is not home)
    home.inflight, other.inflight = 10, 2
    assert choose(replicas, talk, 1.25, placements) == (other, SPILL)
    home.inflight = other.inflight = 0
    # Its history is cached on `other` now: the next turn follows it there, not to its hash.
    assert choose(replicas, _talk(3, 3), 1.25, placements) == (other, AFFINITY)
    # A process that never saw it (no placements) still agrees on the hash.
    assert choose(replicas, _talk(3, 3), 1.25) == (home, AFFINITY)
    # A remembered replica that is over the bound, or left, gives way to the hash.
    other.inflight = 10
    assert choose(replicas, _talk(3, 4), 1.25, placements) == (home, AFFINITY)
    other.inflight = 0
    assert choose([home], _talk(3, 5), 1.25, placements)[0] is home


def test_turns_another_process_served_send_the_conversation_back_to_its_hash() -> None:
    """With several gateway processes, memory must not bounce a conversation between two replicas."""
    replicas = _replicas(2)
    mine = Placements()
    hashed, _ = choose(replicas, _talk(9, 2), 1.25)
    away = next(r for r in replicas if r is not hashed)
    mine.put(_talk(9, 2).key, away.address, _talk(9, 2).length)  # this process sent turn 2 away
    # Turn 3 here: this process served turn 2, so the history is on `away`.
    assert choose(replicas, _talk(9, 3), 1.25, mine) == (away, AFFINITY)
    # Turns 4 and 5 went through other processes (to the hash); turn 6 arrives here again.
    assert choose(replicas, _talk(9, 6), 1.25, mine) == (hashed, AFFINITY)
    assert mine.get(_talk(9, 6).key) == (hashed.address, _talk(9, 6).length)


def test_a_single_replica_remembers_so_a_new_replica_takes_only_new_conversations() -> None:
    first, second = _replicas(2)
    placements = Placements()
    talks = {user: _talk(user, 2) for user in range(200)}
    for talk in talks.values():
        assert choose([first], talk, 1.25, placements)[0] is first
    # KEDA adds a pod: the next turn of every conversation stays where its history is.
    moved = [u for u in talks if choose([first, second], _talk(u, 3), 1.25, placements)[0] is not first]
    assert moved == []
    # A new conversation is placed by load: the idle newcomer.
    first.inflight = 3
    assert choose([first, second], _talk(1000, 1), 1.25, placements)[0] is second


def test_a_conversation_keeps_its_backend_through_a_canary_and_weights_hold_across_conversations() -> None:
    from gateway.routes import parse_routes

    routes = parse_routes(
        {"models": {"support-chat": {
            "routing": {"replicas": "dns", "policy": "prefix-affinity"},
            "backends": {
                "stable": {"url": "http://support-chat-vllm.models:8000", "weight": 90},
                "canary": {"url": "http://support-chat-canary-vllm.models:8000", "weight": 10},
            },
        }}},
        "routes.yaml",
    )["support-chat"]  # fmt: skip
    picked = {
        user: {routes.pick(backend_point(_talk(user, t))).name for t in range(1, 9)} for user in range(2000)
    }
    assert all(len(names) == 1 for names in picked.values()), "a conversation changed backend"
    share = sum(names == {"canary"} for names in picked.values()) / len(picked)
    assert 0.08 < share < 0.12, share
    # Raising the canary to 25 % moves only conversations onto the canary, none off it.
    routes.backends[0].weight, routes.backends[1].weight = 75, 25
    raised = type(routes)(routes.model, routes.backends, routes.routing)
    after = {user: raised.pick(backend_point(_talk(user, 9))).name for user in range(2000)}
    assert all(after[u] == "canary" for u, names in picked.items() if names == {"canary"})
    assert 0.22 < sum(name == "canary" for name in after.values()) / len(after) < 0.28
    assert backend_point(None) is None


def test_an_opening_turn_goes_to_the_least_loaded_and_its_conversation_follows() -> None:
    replicas = _replicas(2)
    placements = Placements()
    opening = _talk(5, 1)
    hashed, _ = choose(replicas, opening, 1.25)
    idle = next(r for r in replicas if r is not hashed)
    hashed.inflight = OPENING_SLACK + 1  # more than OPENING_SLACK above the idle replica
    assert choose(replicas, opening, 1.25, placements) == (idle, LEAST)
    hashed.inflight = 0
    assert choose(replicas, _talk(5, 2), 1.25, placements) == (idle, AFFINITY)


def test_placements_forget_the_least_recently_served_first() -> None:
    placements = Placements(size=3)
    for key in (1, 2, 3):
        placements.put(key, f"10.0.0.{key}:8000", 2)
    placements.put(1, "10.0.0.1:8000", 4)  # served again: now the newest
    placements.put(4, "10.0.0.4:8000", 2)
    assert (len(placements), placements.get(2), placements.get(1)) == (3, None, ("10.0.0.1:8000", 4))


def test_least_outstanding_takes_the_idlest_replica() -> None:
    replicas = _replicas(3)
    replicas[0].inflight, replicas[1].inflight, replicas[2].inflight = 3, 1, 2
    assert choose(replicas, None, None)[0] is replicas[1]


def _answer(records: list[RR], ident: int = 4660) -> bytes:
    question = DNSRecord.question("chat-vllm-headless.models.svc.cluster.local")
    question.header.id = ident
    reply = question.reply()
    for record in records:
        reply.add_answer(record)
    return reply.pack()


def test_dns_answer_gives_the_a_records_past_a_cname() -> None:
    name = "chat-vllm-headless.models.svc.cluster.local"
    packet = _answer([
        RR(name, QTYPE.CNAME, rdata=CNAME("alias.models.svc.cluster.local")),
        RR(name, QTYPE.A, rdata=A("10.0.0.7")),
        RR(name, QTYPE.A, rdata=A("10.0.0.3")),
    ])  # fmt: skip
    assert parse_answer(packet, 4660) == ["10.0.0.3", "10.0.0.7"]


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda p: p[:20], "malformed answer"),
        (lambda p: p[:-2], "malformed answer"),
        (lambda p: p[:12] + b"\xc0" * 40, "malformed answer"),
        (lambda p: p[:2] + bytes([p[2], (p[3] & 0xF0) | 2]) + p[4:], "server answered rcode 2"),
        (lambda p: b"\x00\x01" + p[2:], "answer to another query"),
        (lambda p: p[:2] + bytes([p[2] | 0x02]) + p[3:], r"truncated answer \(TC bit set, answer count 1\)"),
    ],
    ids=["cut-in-the-question", "cut-in-a-record", "garbage-names", "servfail", "foreign-id", "truncated"],
)
def test_a_bad_dns_answer_is_refused_not_crashed_on(mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    packet = _answer([RR("chat-vllm-headless.models.svc.cluster.local", QTYPE.A, rdata=A("10.0.0.7"))])
    with pytest.raises(DnsError, match=message):
        parse_answer(mangle(packet), 4660)
