"""Fixtures: a tiny random Llama model, the real local backend, fast fixed backends, gateways.

Every server is a real process on 127.0.0.1, on a socket the fixture binds to port 0 and
hands over by file descriptor, and is stopped when its fixture ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

GATEWAY_SRC = Path(__file__).resolve().parents[2] / "images" / "gateway"
API_KEY = "test-key-1"


@dataclass
class Server:
    """A server process and its base URL."""

    url: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL: the process dies with its connections, as a crashed pod would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _start(
    module: str,
    args: list[str],
    env: dict[str, str] | None = None,
    ready_path: str = "/health",
    port: int = 0,
) -> Server:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    port = sock.getsockname()[1]
    full_env = {**os.environ, "PYTHONPATH": str(GATEWAY_SRC), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args, "--fd", str(sock.fileno())],
        pass_fds=[sock.fileno()],
        env=full_env,
    )
    sock.close()
    server = Server(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{module} exited with {process.returncode} before answering")
        try:
            if httpx.get(server.url + ready_path, timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"{module} did not answer {ready_path} within 90 s")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised two-layer Llama with a word-level tokenizer, in Hugging Face format.

    Written with tokenizers + safetensors + numpy rather than transformers, so the test
    process does not pay for importing torch and transformers (the backend process does).
    """
    import numpy as np
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = (
        "hello thanks order shipped refund account password reset help please your my the a is was "
        "when where how can i you we will today tomorrow delivery support ticket issue fixed sorry"
    ).split()
    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    vocab = {tok: i for i, tok in enumerate([*specials, ":", *words])}
    path = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(specials)
    tokenizer.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "unk_token": "<unk>",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "pad_token": "<pad>",
                "chat_template": "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}assistant :{% endif %}",
            }
        )
    )
    hidden, inner, layers, heads, kv_heads = 32, 64, 2, 4, 2
    head_dim = hidden // heads
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": len(vocab),
        "hidden_size": hidden,
        "intermediate_size": inner,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-6,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 3,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
    }
    (path / "config.json").write_text(json.dumps(config))
    # Random weights would often pick a special token first and answer with nothing:
    # suppress them, so every answer is max_tokens words of (random) text.
    (path / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 3, "suppress_tokens": [0, 1, 2, 3]})
    )
    rng = np.random.default_rng(0)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    tensors = {
        "model.embed_tokens.weight": weight(len(vocab), hidden),
        "model.norm.weight": np.ones(hidden, np.float32),
        "lm_head.weight": weight(len(vocab), hidden),
    }
    for i in range(layers):
        prefix = f"model.layers.{i}."
        tensors |= {
            prefix + "self_attn.q_proj.weight": weight(heads * head_dim, hidden),
            prefix + "self_attn.k_proj.weight": weight(kv_heads * head_dim, hidden),
            prefix + "self_attn.v_proj.weight": weight(kv_heads * head_dim, hidden),
            prefix + "self_attn.o_proj.weight": weight(hidden, heads * head_dim),
            prefix + "mlp.gate_proj.weight": weight(inner, hidden),
            prefix + "mlp.up_proj.weight": weight(inner, hidden),
            prefix + "mlp.down_proj.weight": weight(hidden, inner),
            prefix + "input_layernorm.weight": np.ones(hidden, np.float32),
            prefix + "post_attention_layernorm.weight": np.ones(hidden, np.float32),
        }
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path


@pytest.fixture(scope="session")
def local_backend(tiny_model_dir: Path) -> Iterator[Server]:
    """The real CPU backend over the tiny model, serving `support-chat` version 7."""
    server = _start(
        "gateway.local_backend",
        ["--model-dir", str(tiny_model_dir), "--served-model-name", "support-chat", "--model-version", "7"],
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    yield server
    server.stop()


@pytest.fixture
def fixed_backend() -> Iterator[Callable[..., Server]]:
    """Start fast fixed-answer backends: ``fixed_backend(version, delay_ms=0, port=0, error_rate=0)``."""
    started: list[Server] = []

    def start(
        version: str, delay_ms: float = 0.0, model: str = "support-chat", port: int = 0, error_rate: float = 0
    ) -> Server:
        server = _start(
            "gateway.fixed_backend",
            ["--served-model-name", model, "--model-version", version, "--delay-ms", str(delay_ms),
             "--error-rate", str(error_rate)],
            port=port,
        )  # fmt: skip
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@dataclass
class Gateway(Server):
    """A gateway process with its routes and keys files."""

    routes_file: Path = Path()
    keys_file: Path = Path()

    def write_routes(self, backends: dict[str, tuple[str, int]], model: str = "support-chat") -> None:
        write_routes(self.routes_file, {model: backends})

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=5).text


def write_routes(path: Path, models: dict[str, dict[str, tuple[str, int]]]) -> None:
    data = {
        "models": {
            model: {
                "backends": {name: {"url": url, "weight": weight} for name, (url, weight) in backends.items()}
            }
            for model, backends in models.items()
        }
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data))
    tmp.replace(path)  # atomic, like the kubelet's symlink swap


def _start_gateway(
    folder: Path,
    backends: dict[str, tuple[str, int]],
    max_body_bytes: int = 64 * 1024,
    read_timeout_s: float = 30,
) -> Gateway:
    """A gateway process routing `support-chat` to ``backends``, its files in ``folder``."""
    folder.mkdir(parents=True)
    routes, keys = folder / "routes.yaml", folder / "api-keys"
    write_routes(routes, {"support-chat": backends})
    keys.write_text(f"# test keys\n{API_KEY}\n")
    env = {
        "GATEWAY_ROUTES_FILE": str(routes),
        "GATEWAY_API_KEYS_FILE": str(keys),
        "GATEWAY_MAX_BODY_BYTES": str(max_body_bytes),
        "GATEWAY_RELOAD_INTERVAL_S": "0.2",
        "GATEWAY_VERSION_REFRESH_S": "0.5",
        "GATEWAY_CONNECT_TIMEOUT_S": "1",
        "GATEWAY_READ_TIMEOUT_S": str(read_timeout_s),
    }
    server = _start("gateway", ["--log-level", "warning"], env=env)
    return Gateway(server.url, server.process, routes_file=routes, keys_file=keys)


@pytest.fixture(scope="session")
def start_gateway() -> Callable[..., Gateway]:
    """``start_gateway(folder, backends)`` for fixtures wider than one test (the caller stops it)."""
    return _start_gateway


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start gateways: ``gateway({"stable": (url, weight), ...}, max_body_bytes=..., read_timeout_s=...)``."""
    started: list[Gateway] = []

    def start(backends: dict[str, tuple[str, int]], **options: float) -> Gateway:
        instance = _start_gateway(tmp_path / f"gateway-{len(started)}", backends, **options)  # type: ignore[arg-type]
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()
