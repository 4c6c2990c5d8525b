"""BiU-Net benchmark: throughput, achieved GFLOP/s and peak memory per preset, then accuracy on
``sim-1kgp`` against the baselines (and Beagle when installed).

Part 1, speed (each measurement in a fresh process, so that its peak memory is its own):

* training: one epoch of ``impbench.nn.Trainer`` (the real code path: batching, masking on the
  device, AMP when on, AdamW, clipping) over random segments, sized to run about
  ``--seconds``; segments/s is the trainer's own count over the epoch loop;
* inference: ``impbench.nn.predict_probs`` (encode, forward, softmax, reassembly) over a random
  target matrix;
* FLOPs per segment of the forward pass counted by ``torch.utils.flop_counter`` (the paper's
  network: about 0.17 GFLOPs per 128-SNP segment); a training step counts 3x the forward;
* peak memory: the process's peak resident set size above its size before the model was
  built (CPU), or ``torch.cuda.max_memory_allocated`` (GPU).

Part 2, accuracy: ``impbench run`` on ``sim-1kgp`` (standard protocol, levels 0.05/0.15/0.25,
3 replicates) with biunet (``cpu`` preset unless ``--preset``), major, knn and beagle when its
plugin and the ``beagle`` command are installed; the table gives the masked-cell dosage R2 and
genotype concordance (mean +- SD over replicates) per level, and fit/impute times.

    .venv/bin/python benchmarks/biunet.py                     # both parts, CPU
    .venv/bin/python benchmarks/biunet.py --skip-accuracy --device cuda --seconds 20
    .venv/bin/python benchmarks/biunet.py --skip-speed --run-name bench --threads 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path


import neural_common
from neural_common import peak_rss_mb, random_matrix, rss_mb, seconds_per_step

PRESETS = ("cpu", "paper")


def measure(preset: str, mode: str, device_name: str, seconds: float, threads: int, batch: int | None) -> dict:
    """One measurement (run in a fresh process): segments/s, GFLOP/s, peak memory."""
    import impbench  # noqa: F401  (before torch: sets OMP_WAIT_POLICY, as in a real run)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from impbench.nn import SegmentData, Trainer, count_parameters, encode, haplotype_codes, input_channels, predict_probs
    from impbench.nn.data import forward
    from impbench.nn import checkpoint as ckpt
    from impbench.nn.runtime import DistEnv, precision_for, resolve_device
    from impbench_biunet import BiUNetImputer, Options

    torch.set_num_threads(threads)
    device = resolve_device(device_name)
    options = Options.from_preset(preset)
    if batch:
        options = Options(**{**options.as_dict(), "batch_size": batch, "predict_batch_size": batch})
    imputer = BiUNetImputer(options)
    length, overlap = 128, 16
    n_seg_per_sample = 64
    n_variants = n_seg_per_sample * (length - overlap) + overlap
    n_features = 1 if options.frequency_channel else 0
    rss_before = rss_mb()
    torch.manual_seed(0)
    # A per-segment branch (the cpu preset) needs the layout and the variant count.
    imputer.layout, imputer.n_variants = (length, overlap), n_variants
    model = imputer.build_model(input_channels(options.use_position, n_features)).to(device)
    precision = precision_for(options.amp, device)

    # FLOPs per segment: one row of every segment (a per-segment branch computes each segment's
    # group once), divided by the rows.
    x_all = encode(torch.full((n_seg_per_sample, length), 1, dtype=torch.uint8, device=device), torch.rand(n_seg_per_sample, length, device=device),
                   torch.rand(n_seg_per_sample, n_features, length, device=device) if n_features else None)
    with FlopCounterMode(display=False) as counter:
        forward(model, x_all, torch.arange(n_seg_per_sample, device=device))
    flops_forward = counter.get_total_flops() / n_seg_per_sample

    # Calibrate: time a few batches, then size the data to run about `seconds`.
    step_batch = options.batch_size if mode == "train" else options.predict_batch_size
    codes = torch.randint(1, 5, (step_batch, length), dtype=torch.uint8, device=device)
    if options.haplotypes:  # haplotype rows: 1 = REF, 4 = ALT
        codes = (torch.randint(0, 2, (step_batch, length), device=device) * 3 + 1).to(torch.uint8)
    segment_index = torch.arange(step_batch, device=device) % n_seg_per_sample
    x = encode(codes, torch.rand(step_batch, length, device=device),
               torch.rand(step_batch, n_features, length, device=device) if n_features else None)

    def one_step() -> None:
        if mode == "train":
            with precision.autocast():
                logits = forward(model, x, segment_index)
            imputer.loss(logits.float(), codes.long()).backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode(), precision.autocast():
                forward(model, x, segment_index).float().cpu()

    rate = step_batch / seconds_per_step(one_step, device)
    n_segments = int(max(3 * step_batch, rate * seconds))
    n_samples = max(1, -(-n_segments // n_seg_per_sample))
    matrix = random_matrix(n_samples, n_variants, seed=1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    if mode == "train":
        with tempfile.TemporaryDirectory() as tmp:
            features = imputer.variant_features(matrix.codes) if n_features else None
            rows = haplotype_codes(matrix.codes) if options.haplotypes else matrix.codes
            data = SegmentData(rows, matrix.positions, length, overlap, device, features)
            run_options = Options(**{**options.as_dict(), "epochs": 1, "warmup_epochs": 0, "patience": 0})
            fp = ckpt.fingerprint("biunet", run_options.learning_fields(), "bench", "random")
            trainer = Trainer(model, imputer.loss, run_options, DistEnv(device=device), Path(tmp), fp, seed=0, name="biunet")
            result = trainer.fit(data, None, resume=False)
        segments_per_s = result.timing[0]["segments_per_s"]
        n_done = len(data)
        flops_per_segment = 3 * flops_forward
    else:
        features = imputer.variant_features(matrix.codes) if n_features else None
        start = time.perf_counter()
        predict_probs(model, matrix.codes, matrix.positions, length, overlap, use_position=options.use_position,
                      device=device, precision=precision, batch_size=options.predict_batch_size, features=features,
                      haplotypes=options.haplotypes)
        if device.type == "cuda":
            torch.cuda.synchronize()
        n_done = matrix.n_samples * n_seg_per_sample
        segments_per_s = n_done / (time.perf_counter() - start)
        flops_per_segment = flops_forward
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
        memory_kind = "GPU allocated"
    else:
        peak_mb = peak_rss_mb() - rss_before
        memory_kind = "RSS above start"
    return {
        "preset": preset, "mode": mode, "device": str(device), "threads": threads, "precision": precision.name,
        "params": count_parameters(model), "batch": step_batch, "segments": n_done,
        "segments_per_s": segments_per_s, "gflops_per_segment": flops_per_segment / 1e9,
        "gflop_per_s": segments_per_s * flops_per_segment / 1e9, "peak_mb": peak_mb, "memory_kind": memory_kind,
    }


def _measure_in_child(queue, *args) -> None:
    try:
        queue.put(measure(*args))
    except Exception as exc:  # reported in the table
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def speed_table(args) -> list[dict]:
    context = multiprocessing.get_context("spawn")
    rows = []
    for preset in args.presets:
        for mode in ("train", "inference"):
            batch = args.paper_batch if (preset == "paper" and args.device == "cpu") else None
            queue = context.Queue()
            child = context.Process(target=_measure_in_child, args=(queue, preset, mode, args.device, args.seconds, args.threads, batch))
            child.start()
            row = queue.get()
            child.join()
            row.setdefault("preset", preset)
            row.setdefault("mode", mode)
            rows.append(row)
            print(f"  measured {preset} {mode}: " + (row.get("error") or f"{row['segments_per_s']:,.0f} segments/s"), file=sys.stderr, flush=True)
    return rows


def print_speed(rows: list[dict]) -> None:
    print("\n## Throughput (random segments, L=128, O=16; inference memory includes the target's probabilities)\n")
    print("| preset | mode | device | threads | precision | params | batch | segments timed | segments/s | GFLOP/segment | GFLOP/s | peak memory (MB) |")
    print("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['preset']} | {r['mode']} | failed: {r['error']} ||||||||||")
            continue
        print(
            f"| {r['preset']} | {r['mode']} | {r['device']} | {r['threads']} | {r['precision']} | {r['params']:,} | {r['batch']} | {r['segments']:,} "
            f"| {r['segments_per_s']:,.0f} | {r['gflops_per_segment']:.4f} | {r['gflop_per_s']:.1f} | {r['peak_mb']:,.0f} ({r['memory_kind']}) |"
        )


def accuracy_table(args) -> None:
    options = {"biunet": {"preset": args.preset}} if args.preset else {}
    neural_common.accuracy_table(
        dataset=args.dataset, names=["biunet", "major", "knn"], with_beagle=True, options=options, out=args.out,
        run_name=args.run_name, device=args.device, threads=args.threads, command="benchmarks/biunet.py",
        info_for=["biunet"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(PRESETS), help="presets to time (comma list)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--seconds", type=float, default=10.0, help="about how long each speed measurement runs")
    parser.add_argument("--paper-batch", type=int, default=64, help="batch of the paper preset on CPU (its own is 1024)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--dataset", default="sim-1kgp")
    parser.add_argument("--preset", default=None, help="biunet preset for the accuracy run (default: its default, cpu)")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "impbench-bench"), help="results folder of the accuracy run")
    parser.add_argument("--run-name", default=None, help="run name (reuse it to resume)")
    args = parser.parse_args(argv)
    args.presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if args.threads is None:
        import os

        args.threads = len(os.sched_getaffinity(0))
    print(f"# BiU-Net benchmark ({time.strftime('%Y-%m-%d %H:%M')}, load average {', '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}, "
          f"{len(__import__('os').sched_getaffinity(0))} cores)")
    if not args.skip_speed:
        print_speed(speed_table(args))
    if not args.skip_accuracy:
        accuracy_table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
