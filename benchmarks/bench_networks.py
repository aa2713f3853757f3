"""Parameter counts and CPU speed of the sleepkd networks.

Measures, for batches of 64 inputs (one input = one scored 30-s epoch, with its
context for ContextNet), the inference forward time (eval mode, no grad) and the
time of one training step (forward + backward + Adam), and writes a markdown table
to ``benchmarks/results/networks.md``.

Run from the repository root::

    python benchmarks/bench_networks.py [--repeats 3] [--batch 64] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

try:
    from sleepkd.networks import CompactUTime, ContextNet, UTime
except ImportError:  # run from a checkout without `pip install -e .`
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sleepkd.networks import CompactUTime, ContextNet, UTime

RESULTS = Path(__file__).resolve().parent / "results" / "networks.md"

# (label, class, n_times, sfreq, kwargs)
CONFIGS = [
    ("UTime, EEG/ECG 200 Hz (paper)", UTime, 6000, 200.0, {}),
    ("CompactUTime, 200 Hz", CompactUTime, 6000, 200.0, {}),
    ("CompactUTime, 100 Hz", CompactUTime, 3000, 100.0, {}),
    ("ContextNet, heart rate 4 Hz, k=4 (GRU)", ContextNet, 9 * 120, 4.0, {"n_context": 4}),
    ("ContextNet, heart rate 4 Hz, k=4 (TCN)", ContextNet, 9 * 120, 4.0,
     {"n_context": 4, "sequence": "tcn"}),
    ("ContextNet, ECG 100 Hz, k=2 (GRU)", ContextNet, 5 * 3000, 100.0, {"n_context": 2}),
]


def count_macs(net: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass (Conv1d, Linear and GRU layers)."""
    total = 0

    def conv_hook(mod, inp, out):
        nonlocal total
        total += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0]

    def linear_hook(mod, inp, out):
        nonlocal total
        total += out.numel() * mod.in_features

    def gru_hook(mod, inp, out):
        nonlocal total
        seq = out[0]  # (batch, steps, directions * hidden)
        steps = seq.shape[0] * seq.shape[1]
        directions = 2 if mod.bidirectional else 1
        h, n_in = mod.hidden_size, mod.input_size
        for layer in range(mod.num_layers):
            layer_in = n_in if layer == 0 else directions * h
            total += steps * directions * 3 * (layer_in * h + h * h)

    handles = []
    for mod in net.modules():
        if isinstance(mod, nn.Conv1d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            handles.append(mod.register_forward_hook(linear_hook))
        elif isinstance(mod, nn.GRU):
            handles.append(mod.register_forward_hook(gru_hook))
    with torch.no_grad():
        net(x)
    for handle in handles:
        handle.remove()
    return total


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, oneDNN kernels)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(batch: int, repeats: int) -> list[dict]:
    rows = []
    for label, cls, n_times, sfreq, kwargs in CONFIGS:
        torch.manual_seed(0)
        net = cls(1, 4, n_times, sfreq, **kwargs)
        x = torch.randn(batch, 1, n_times)
        y = torch.randint(0, 4, (batch,))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def forward():
            with torch.no_grad():
                net(x)

        def train_step():
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()

        net.eval()
        macs = count_macs(net, x[:1])
        t_fwd = _median_time(forward, repeats)
        net.train()
        t_train = _median_time(train_step, repeats)
        rows.append({
            "network": label, "n_times": n_times,
            "params": sum(p.numel() for p in net.parameters()),
            "mmacs": macs / 1e6,
            "fwd_batch_s": t_fwd, "fwd_epoch_ms": 1000 * t_fwd / batch,
            "train_batch_s": t_train,
        })
    return rows


def to_markdown(tables: dict[int, list[dict]], batch: int, repeats: int,
                command: str) -> str:
    lines = [
        "# Networks: parameters and CPU speed",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}; batch {batch}, median of {repeats} runs after one "
        f"warm-up; 1 input channel, 4 classes. Load average at the end: "
        f"{os.getloadavg()[0]:.1f} (other jobs shared the machine).",
        "",
        "Forward = eval mode under `torch.no_grad()`; train step = forward, backward and "
        "one Adam update in train mode. Timings on a shared machine vary by tens of "
        "percent between runs; MMAC (millions of multiply-accumulates of the "
        "Conv1d/Linear/GRU layers per input, i.e. per scored epoch) does not.",
    ]
    for n_threads, rows in tables.items():
        lines += [
            "",
            f"## {n_threads} thread{'s' if n_threads > 1 else ''}",
            "",
            "| network | n_times | parameters | MMAC / epoch | forward / batch (s) "
            "| forward / epoch (ms) | train step / batch (s) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(f"| {r['network']} | {r['n_times']} | {r['params']:,} | "
                         f"{r['mmacs']:,.0f} | {r['fwd_batch_s']:.3f} | "
                         f"{r['fwd_epoch_ms']:.2f} | {r['train_batch_s']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()],
                        help="torch thread counts to measure (one table each)")
    args = parser.parse_args()
    tables = {}
    for n_threads in args.threads:
        torch.set_num_threads(n_threads)
        tables[n_threads] = bench(args.batch, args.repeats)
    command = (f"python benchmarks/bench_networks.py --batch {args.batch} "
               f"--repeats {args.repeats} --threads {' '.join(map(str, args.threads))}")
    text = to_markdown(tables, args.batch, args.repeats, command)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
