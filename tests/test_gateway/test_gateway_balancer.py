"""The replica choice and the DNS answers it is built on, without processes: fast and exact."""

from __future__ import annotations

import collections

import pytest
from dnslib import CNAME, QTYPE, RR, A, DNSRecord
from gateway.balancer import AFFINITY, SPILL, affinity_key, choose
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


def test_every_turn_of_a_conversation_has_its_key_and_users_differ() -> None:
    assert len({affinity_key(_chat(7, turns)) for turns in range(1, 6)}) == 1
    assert len({affinity_key(_chat(user, 1)) for user in range(50)}) == 50
    assert affinity_key({"model": "m", "prompt": "x" * 5000}) == affinity_key(
        {"model": "m", "prompt": "x" * 4000}
    )
    assert affinity_key({"model": "m"}) is None


def test_affinity_spreads_conversations_and_moves_only_the_leaving_replicas_share() -> None:
    replicas = _replicas(4)
    keys = [affinity_key(_chat(user, 1)) for user in range(400)]
    placed = {key: choose(replicas, key, 1.25)[0].address for key in keys}
    per_replica = collections.Counter(placed.values())
    assert min(per_replica.values()) > 60, per_replica  # about 100 each
    survivors = replicas[:3]  # 10.0.0.4 leaves
    moved = [
        k for k in keys if placed[k] != "10.0.0.4:8000" and choose(survivors, k, 1.25)[0].address != placed[k]
    ]
    assert moved == []


def test_an_overloaded_replica_spills_to_the_next_in_its_order() -> None:
    replicas = _replicas(2)
    key = affinity_key(_chat(1, 1))
    home, how = choose(replicas, key, 1.25)
    assert how == AFFINITY
    home.inflight = 10
    other = next(r for r in replicas if r is not home)
    other.inflight = 2  # bound: ceil(1.25 * 13 / 2) = 9 <= 10
    assert choose(replicas, key, 1.25) == (other, SPILL)
    home.inflight = 4  # bound: ceil(1.25 * 7 / 2) = 5 > 4: back home
    assert choose(replicas, key, 1.25) == (home, AFFINITY)


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
