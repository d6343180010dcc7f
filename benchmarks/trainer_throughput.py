"""Trainer throughput: tokens/s for 1 vs 2 CPU ranks, and model FLOPs utilisation on a CUDA GPU.

Usage:
    python benchmarks/trainer_throughput.py                 # CPU: torchrun 1 and 2 ranks
    python benchmarks/trainer_throughput.py --gpu           # also the ~100M Llama in bf16 on CUDA
    python benchmarks/trainer_throughput.py --steps 40 --seq-len 128 --batch-size 8

The CPU part runs the real entrypoint (`torchrun -m trainer.train`, tiny model, synthetic data,
MLflow on a throw-away SQLite file) and reads the mean tokens/s (all ranks, first step excluded)
from its result file. Tokens/s counts every token of the global batch per optimizer step.

The GPU part trains a ~100M-parameter Llama-style model (hidden 768, 12 layers, vocab 32000) in
bf16 autocast on random tokens and reports MFU = achieved model FLOPs / the GPU's peak dense
bf16 FLOPs, with model FLOPs per token = 6 * parameters + 12 * layers * hidden * seq_len.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Dense bf16 peak (no sparsity), FLOP/s, by a substring of torch.cuda.get_device_name().
PEAK_BF16 = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 70e12,
    "L4": 121e12,
}


def cpu_run(
    ranks: int, threads: int, steps: int, seq_len: int, batch_size: int, workdir: Path
) -> dict[str, float]:
    out = workdir / f"ranks-{ranks}-threads-{threads}"
    out.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MLFLOW_TRACKING_URI": f"sqlite:///{out}/mlflow.db",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={ranks}",
        "-m",
        "trainer.train",
        "--max-steps",
        str(steps),
        "--seq-len",
        str(seq_len),
        "--batch-size",
        str(batch_size),
        "--log-every",
        str(steps),
        "--result-file",
        str(out / "result.json"),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=out, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"torchrun with {ranks} rank(s) failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    result = json.loads((out / "result.json").read_text())
    return {
        "ranks": ranks,
        "threads_per_rank": threads,
        "tokens_per_second": result["mean_tokens_per_second"],
        "per_rank_tokens_per_second": result["mean_tokens_per_second"] / ranks,
        "wall_seconds": time.perf_counter() - started,
    }


def gpu_mfu(steps: int, seq_len: int, batch_size: int) -> dict[str, float | str] | None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if not torch.cuda.is_available():
        return None
    device = torch.device("cuda")
    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=768,
        intermediate_size=2048,
        num_hidden_layers=12,
        num_attention_heads=12,
        num_key_value_heads=12,
        max_position_embeddings=seq_len,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config).to(device)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=True)
    batch = torch.randint(0, config.vocab_size, (batch_size, seq_len), device=device)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    tokens_per_second = steps * batch_size * seq_len / elapsed
    flops_per_token = 6 * params + 12 * config.num_hidden_layers * config.hidden_size * seq_len
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    return {
        "device": name,
        "parameters": params,
        "tokens_per_second": tokens_per_second,
        "achieved_tflops": tokens_per_second * flops_per_token / 1e12,
        "mfu": tokens_per_second * flops_per_token / peak if peak else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8, help="per rank")
    parser.add_argument("--gpu", action="store_true", help="also measure MFU of the ~100M model on CUDA")
    parser.add_argument("--gpu-steps", type=int, default=20)
    parser.add_argument("--gpu-seq-len", type=int, default=1024)
    parser.add_argument("--gpu-batch-size", type=int, default=16)
    args = parser.parse_args()

    print(f"CPU: tiny Llama, seq_len {args.seq_len}, batch {args.batch_size}/rank, {args.steps} steps")
    with tempfile.TemporaryDirectory(prefix="trainer-bench-") as tmp:
        # 1 rank with 1 thread is the per-core baseline DDP should scale from; 1 rank with all
        # cores is what a single process would get.
        cores = os.cpu_count() or 2
        configs = sorted({(1, 1), (1, cores), (2, max(1, cores // 2))})
        rows = [
            cpu_run(ranks, threads, args.steps, args.seq_len, args.batch_size, Path(tmp))
            for ranks, threads in configs
        ]
    print(f"{'ranks':>5} {'threads/rank':>12} {'tokens/s':>10} {'per rank':>10} {'wall s':>7}")
    for row in rows:
        print(
            f"{row['ranks']:>5} {row['threads_per_rank']:>12} {row['tokens_per_second']:>10.0f} "
            f"{row['per_rank_tokens_per_second']:>10.0f} {row['wall_seconds']:>7.1f}"
        )
    baseline = next(r for r in rows if r["ranks"] == 1 and r["threads_per_rank"] == 1)
    two = next(r for r in rows if r["ranks"] == 2)
    scaling = two["tokens_per_second"] / baseline["tokens_per_second"]
    print(f"scaling 2 ranks vs 1 rank x 1 thread: {scaling:.2f}x")

    if args.gpu:
        gpu = gpu_mfu(args.gpu_steps, args.gpu_seq_len, args.gpu_batch_size)
        if gpu is None:
            print("GPU: no CUDA device here; MFU not measured")
        else:
            print(
                f"GPU {gpu['device']}: {gpu['parameters'] / 1e6:.0f}M params bf16, "
                f"{gpu['tokens_per_second']:.0f} tokens/s, {gpu['achieved_tflops']:.1f} TFLOP/s, "
                f"MFU {gpu['mfu']:.1%}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
