"""Reproducible budgets: a fit gives the same bytes on a loaded and a quiet machine, and under
DDP the stop rule is one decision for every rank (the wall-clock cap included)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from impbench.data.simulate import simulate_matrix  # noqa: E402
from impbench.imputers.base import RunContext  # noqa: E402
from impbench.nn import BEST, LATEST, METRICS_CSV, NNOptions, SegmentImputer  # noqa: E402
from impbench.nn import checkpoint as ckpt  # noqa: E402
from impbench.nn import losses  # noqa: E402


class SmallNet(torch.nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv1d(in_channels, 8, 5, padding=2), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Conv1d(8, 6, 5, padding=2)
        )

    def forward(self, x):
        return self.body(x)


class SmallImputer(SegmentImputer):
    name = "small-nn"
    Options = NNOptions

    def build_model(self, in_channels):
        return SmallNet(in_channels)

    def loss(self, logits, target):
        return losses.cross_entropy(logits, target)


def fit_once(work_dir, panel):
    options = NNOptions(epochs=4, batch_size=16, segment_length=32, segment_overlap=8, lr_schedule="steps", patience=0, mask_sampling="uniform",
                        mask_start=0.05, mask_end=0.5)
    imputer = SmallImputer(options)
    imputer.fit(panel, None, RunContext(work_dir=work_dir, device="cpu", threads=1, seed=3))
    return imputer


def test_the_same_fit_beside_a_cpu_bound_process_gives_the_same_bytes(tmp_path):
    """Budgets are epochs of fixed steps: a loaded machine changes the timing file only."""
    panel = simulate_matrix(n_samples=30, sequence_length=50_000, seed=4)
    quiet = fit_once(tmp_path / "quiet", panel)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = fit_once(tmp_path / "loaded", panel)
    finally:
        hog.kill()
        hog.wait()
    assert quiet.result.stop_reason == loaded.result.stop_reason == "epochs"
    for name in (BEST, METRICS_CSV):
        assert (tmp_path / "quiet" / name).read_bytes() == (tmp_path / "loaded" / name).read_bytes(), name
    a, b = ckpt.load(tmp_path / "quiet" / LATEST), ckpt.load(tmp_path / "loaded" / LATEST)
    assert a["history"] == b["history"] and a["steps"] == b["steps"] == 4 * quiet.result.history[0]["steps"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()


WORKER = textwrap.dedent(
    """
    import json, os, sys, types
    import numpy as np, torch
    from impbench.data.simulate import simulate_matrix
    from impbench.nn import losses, trainer as trainer_module
    from impbench.nn import checkpoint as ckpt
    from impbench.nn.data import SegmentData
    from impbench.nn.options import NNOptions
    from impbench.nn.runtime import setup, teardown
    from impbench.nn.validation import ValidationSet

    out, train_seconds = sys.argv[1], float(sys.argv[2])
    rank = int(os.environ["RANK"])
    if rank == 1:  # this rank's clock runs fast: it alone would think the time is spent
        state = {"t": 0.0}
        def fast():
            state["t"] += 100.0
            return state["t"]
        trainer_module.time = types.SimpleNamespace(perf_counter=fast)
    torch.set_num_threads(1)
    env = setup("cpu")
    matrix = simulate_matrix(n_samples=24, sequence_length=40_000, seed=5)
    train = SegmentData(matrix.codes[:18], matrix.positions, 32, 8, "cpu")
    val = ValidationSet.build(matrix.codes[18:], matrix.codes[:18], matrix.positions, 0.2, seed=1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(7, 8, 5, padding=2), torch.nn.ReLU(), torch.nn.Conv1d(8, 6, 5, padding=2))
    options = NNOptions(epochs=5, batch_size=8, patience=0, train_seconds=train_seconds)
    fp = ckpt.fingerprint("ddp", options.learning_fields(), "hash", "data", world_size=env.world_size)
    trainer = trainer_module.Trainer(model, losses.cross_entropy, options, env, os.path.join(out, "work"), fp, seed=2, name="ddp")
    result = trainer.fit(train, val, resume=False)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
        json.dump({"epochs_run": result.epochs_run, "steps": result.steps, "stop_reason": result.stop_reason,
                   "digests": result.replica_digests, "rank_batch_size": result.rank_batch_size,
                   "val_r2": [r["val_r2"] for r in result.history]}, fh)
    teardown(env)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_ranks(tmp_path, train_seconds: float) -> list[dict]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path), str(train_seconds)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        logs = [p.communicate(timeout=240)[0].decode(errors="replace") for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail("the DDP ranks did not finish together (a rank left the training alone: deadlock)")
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-3000:] for log in logs)
    return [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]


def test_ddp_ranks_stop_together_when_one_ranks_clock_says_time_is_up(tmp_path):
    """gloo, two ranks: rank 1's clock runs 100 s per reading, rank 0's is real. The cap is
    all-reduced, so both leave the first epoch at the same step and stop with ``time``."""
    ranks = run_two_ranks(tmp_path, train_seconds=250.0)
    assert ranks[0] == ranks[1]
    assert ranks[0]["stop_reason"] == "time" and ranks[0]["epochs_run"] == 1
    assert ranks[0]["digests"][0] == ranks[0]["digests"][1]
    assert ranks[0]["rank_batch_size"] == 4  # batch_size 8 is the global batch


def test_ddp_ranks_run_the_epoch_budget_in_step(tmp_path):
    ranks = run_two_ranks(tmp_path, train_seconds=0.0)
    assert ranks[0] == ranks[1] and ranks[0]["stop_reason"] == "epochs" and ranks[0]["epochs_run"] == 5
