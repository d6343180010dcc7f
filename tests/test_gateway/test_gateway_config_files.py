"""The routes and API-keys files: what is accepted, and what a bad edit is told."""

from __future__ import annotations

from pathlib import Path

import pytest
from gateway.keys import KeysError, parse_keys
from gateway.routes import RoutesError, load_routes, parse_routes
from gateway.versions import version_from_models


def _routes(**backends: object) -> dict[str, object]:
    return {"models": {"support-chat": {"backends": backends}}}


def test_routes_file_builds_weighted_backends(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "models:\n  support-chat:\n    backends:\n"
        "      stable: {url: 'http://support-chat-vllm.models.svc:8000/', weight: 90}\n"
        "      canary: {url: 'http://support-chat-canary-vllm.models.svc:8000', weight: 10}\n"
    )
    route = load_routes(path)["support-chat"]
    assert [(b.name, b.url, b.weight) for b in route.backends] == [
        ("stable", "http://support-chat-vllm.models.svc:8000", 90),
        ("canary", "http://support-chat-canary-vllm.models.svc:8000", 10),
    ]
    assert {route.pick().name for _ in range(500)} == {"stable", "canary"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"model": {}}, "field 'models' must be a non-empty mapping"),
        (
            _routes(stable={"url": "http://a:8000", "weight": -1}),
            "models.support-chat.backends.stable.weight",
        ),
        (_routes(stable={"url": "a:8000", "weight": 1}), "models.support-chat.backends.stable.url"),
        (
            _routes(stable={"url": "http://a:8000", "weight": 1, "version": "3"}),
            "unknown field(s) ['version']",
        ),
        (_routes(stable={"url": "http://a:8000", "weight": 0}), "at least one weight must be > 0"),
    ],
)
def test_bad_routes_name_file_and_field(data: object, message: str) -> None:
    with pytest.raises(RoutesError) as caught:
        parse_routes(data, "routes.yaml")
    assert str(caught.value).startswith("routes.yaml: ")
    assert message in str(caught.value)


def _routed(routing: object) -> dict[str, object]:
    return {
        "models": {
            "support-chat": {
                "routing": routing,
                "backends": {"stable": {"url": "http://a:8000", "weight": 1}},
            }
        }
    }


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        (
            {"policy": "round-robin"},
            "routes.yaml: models.support-chat.routing.policy: must be one of "
            "['least-outstanding', 'prefix-affinity'], got 'round-robin'",
        ),
        (
            {"replicas": "endpoints"},
            "routes.yaml: models.support-chat.routing.replicas: must be one of ['service', 'dns'], "
            "got 'endpoints'",
        ),
        (
            {"policy": "prefix-affinity", "loadFactor": 1},
            "routes.yaml: models.support-chat.routing.loadFactor: must be a number from 1.05 to 4.0, got 1",
        ),
        (
            {"policy": "prefix-affinity", "loadFactor": "1.5"},
            "routes.yaml: models.support-chat.routing.loadFactor: must be a number from 1.05 to 4.0, "
            "got '1.5'",
        ),
        (
            {"loadFactor": 1.5},
            "routes.yaml: models.support-chat.routing.loadFactor: only applies to policy prefix-affinity "
            "(policy is 'least-outstanding')",
        ),
        (
            {"policy": "prefix-affinity", "prefixChars": 100},
            "routes.yaml: models.support-chat.routing: unknown field(s) ['prefixChars']; "
            "allowed: ['loadFactor', 'policy', 'replicas']",
        ),
        ("dns", "routes.yaml: models.support-chat.routing: must be a mapping"),
        (
            {"replicas": "dns"},
            "routes.yaml: models.support-chat.backends.stable.url: routing.replicas dns needs a Service name",
        ),
    ],
)
def test_bad_routing_values_are_refused_with_the_field_and_the_allowed_values(
    routing: object, message: str
) -> None:
    with pytest.raises(RoutesError) as caught:
        parse_routes(_routed(routing), "routes.yaml")
    assert str(caught.value).startswith(message)


def test_routing_block_sets_the_replica_policy() -> None:
    data = _routed({"replicas": "dns", "policy": "prefix-affinity", "loadFactor": 1.5})
    data["models"]["support-chat"]["backends"]["stable"]["url"] = "http://chat-vllm.models.svc:8000"  # type: ignore[index]
    route = parse_routes(data, "r")
    routing = route["support-chat"].routing
    assert (routing.replicas, routing.policy, routing.load_factor) == ("dns", "prefix-affinity", 1.5)
    plain = parse_routes(_routes(stable={"url": "http://a:8000", "weight": 1}), "r")["support-chat"].routing
    assert (plain.replicas, plain.policy) == ("service", "least-outstanding")


def test_zero_weight_backend_gets_no_traffic_but_is_the_retry_target() -> None:
    route = parse_routes(
        _routes(stable={"url": "http://a:8000", "weight": 1}, spare={"url": "http://b:8000", "weight": 0}),
        "r",
    )["support-chat"]
    assert {route.pick().name for _ in range(300)} == {"stable"}
    assert route.alternative(route.backends[0]).name == "spare"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    ["# keys\nkey-a\n\nkey-b\n", "- key-a\n- key-b\n", "team-a: key-a\nteam-b: key-b\n"],
)
def test_keys_file_shapes(text: str) -> None:
    assert parse_keys(text, "keys") == {"key-a", "key-b"}


def test_empty_keys_file_is_an_error() -> None:
    with pytest.raises(KeysError, match="keys: no API key"):
        parse_keys("# nothing yet\n", "keys")


def test_version_comes_from_the_versioned_served_name() -> None:
    payload = b'{"object":"list","data":[{"id":"support-chat"},{"id":"support-chat:12"}]}'
    assert version_from_models("support-chat", payload) == "12"
    assert version_from_models("support-chat", b'{"data":[{"id":"support-chat"}]}') is None
    assert version_from_models("support-chat", b"not json") is None
