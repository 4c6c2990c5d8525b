"""SCDA benchmark, next to BiU-Net: throughput, achieved GFLOP/s and peak memory per preset and
training mode, then accuracy on ``sim-1kgp`` against BiU-Net and the baselines.

Part 1, speed (each measurement in a fresh process, so that its peak memory is its own). The
unit is the genotype cell (one sample at one SNP), so that full-length SCDA, segmented SCDA and
BiU-Net (128-SNP segments, overlap 16) compare directly; every model sees the same random
matrix of ``--snps`` SNPs (default 5,939, as ``sim-1kgp``'s panel):

* training: one epoch of ``impbench.nn.Trainer`` (the real code path: the plugin's loss,
  batching, masking on the device, AMP when on, AdamW, clipping) over random samples, sized to
  run about ``--seconds``; cells/s = training cells / the epoch loop's seconds;
* inference: ``impbench.nn.predict_probs`` (encode, forward, softmax, reassembly) over a random
  target matrix;
* GFLOP per cell of the forward pass (``torch.utils.flop_counter`` on one segment or one whole
  sequence, divided by the real SNPs it covers, so overlap and padding count as waste); a
  training step counts 3x the forward;
* peak memory: the process's peak resident set size above its size before the model was built
  (CPU), or ``torch.cuda.max_memory_allocated`` (GPU); for full-length SCDA also the estimate
  that ``fit`` checks against the device's memory before it trains.

Part 2, accuracy: ``impbench run`` on ``sim-1kgp`` (standard protocol, levels 0.05/0.15/0.25,
3 replicates) with scda (``cpu`` preset unless ``--scda-preset``), biunet (``cpu`` preset unless
``--biunet-preset``), major and knn (and beagle with ``--beagle`` when installed): masked-cell
dosage R2 and genotype concordance (mean +- SD over replicates) per level, fit and impute times.

    .venv/bin/python benchmarks/scda.py                        # both parts, CPU
    .venv/bin/python benchmarks/scda.py --skip-accuracy --device cuda --seconds 20
    .venv/bin/python benchmarks/scda.py --skip-speed --run-name bench --threads 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path


import neural_common
from neural_common import peak_rss_mb, random_matrix, rss_mb, seconds_per_step

#: (imputer, preset, segmented) rows of the speed table; BiU-Net's ``paper`` (on CPU) and
#: segmented ``paper6`` run with ``--paper-batch`` segments; full-length ``paper6`` keeps its
#: batch of 8 whole sequences.
CONFIGS = (
    ("scda", "cpu", False),
    ("scda", "original", False),
    ("scda", "paper6", False),
    ("scda", "paper6", True),
    ("biunet", "cpu", True),
    ("biunet", "paper", True),
)
SEGMENT_LENGTH, SEGMENT_OVERLAP = 128, 16


def _imputer(name: str, preset: str, segmented: bool, batch: int | None):
    """The plugin's imputer with the preset's options (and the batch override)."""
    if name == "scda":
        from impbench_scda import SCDAImputer as cls
    else:
        from impbench_biunet import BiUNetImputer as cls
    values = cls.Options.from_preset(preset).as_dict()
    if name == "scda":
        values["segmented"] = segmented
    if batch:
        values.update(batch_size=batch, predict_batch_size=batch)
    return cls(cls.Options(**values))


def measure(name: str, preset: str, segmented: bool, mode: str, device_name: str, seconds: float, threads: int,
            n_variants: int, batch: int | None) -> dict:
    """One measurement (run in a fresh process): cells/s, GFLOP/s, peak memory."""
    import impbench  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from impbench.imputers.base import RunContext
    from impbench.nn import SegmentData, Trainer, count_parameters, encode, input_channels, predict_probs
    from impbench.nn import checkpoint as ckpt
    from impbench.nn.runtime import DistEnv, precision_for, resolve_device
    from impbench.imputers.segments import n_segments

    torch.set_num_threads(threads)
    device = resolve_device(device_name)
    imputer = _imputer(name, preset, segmented, batch)
    options = imputer.options
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(work_dir=Path(tmp), device=device_name, threads=threads,
                         card_options={"segment_length": SEGMENT_LENGTH, "segment_overlap": SEGMENT_OVERLAP})
        length, overlap = imputer.segment_layout(n_variants, ctx)
    n_seg = n_segments(n_variants, length, overlap)
    n_features = 1 if options.frequency_channel else 0
    in_channels = input_channels(options.use_position, n_features)
    estimate_mb = None
    if name == "scda" and not options.segmented:
        from impbench_scda import memory

        train_bytes, predict_bytes = memory.full_length_bytes(
            imputer.build_model(in_channels), in_channels, imputer.length_multiple, length,
            options.batch_size, options.predict_batch_size)
        estimate_mb = (train_bytes if mode == "train" else predict_bytes) / 2**20
    rss_before = rss_mb()
    torch.manual_seed(0)
    model = imputer.build_model(in_channels).to(device)
    imputer.model = model  # the SCDA loss reads its kernels (L1)
    precision = precision_for(options.amp, device)

    def batch_input(n: int):
        codes = torch.randint(1, 5, (n, length), dtype=torch.uint8, device=device)
        position = torch.rand(n, length, device=device)
        features = torch.rand(n, n_features, length, device=device) if n_features else None
        return codes, encode(codes, position if options.use_position else None, features)

    _, x_one = batch_input(1)
    with FlopCounterMode(display=False) as counter:
        model(x_one)
    flops_per_cell = counter.get_total_flops() * n_seg / n_variants  # overlap and padding are waste

    # Calibrate: time a few batches, then size the data to run about `seconds`.
    step_batch = options.batch_size if mode == "train" else options.predict_batch_size
    codes, x = batch_input(step_batch)

    def one_step() -> None:
        if mode == "train":
            with precision.autocast():
                logits = model(x)
            imputer.loss(logits.float(), codes.long()).backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode(), precision.autocast():
                model(x).float().cpu()

    segments_per_s = step_batch / seconds_per_step(one_step, device)
    n_samples = max(step_batch * 3 // n_seg + 1, int(segments_per_s * seconds / n_seg) + 1)
    matrix = random_matrix(n_samples, n_variants, seed=1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    features = imputer.variant_features(matrix.codes) if n_features else None
    if mode == "train":
        with tempfile.TemporaryDirectory() as tmp:
            data = SegmentData(matrix.codes, matrix.positions, length, overlap, device, features)
            run_options = type(options)(**{**options.as_dict(), "epochs": 1, "warmup_epochs": 0, "patience": 0})
            fp = ckpt.fingerprint(name, run_options.learning_fields(), "bench", "random")
            trainer = Trainer(model, imputer.loss, run_options, DistEnv(device=device), Path(tmp), fp, seed=0, name=name)
            result = trainer.fit(data, None, resume=False)
        seconds_taken = result.timing[0]["seconds"]
        flops = 3 * flops_per_cell
    else:
        start = time.perf_counter()
        predict_probs(model, matrix.codes, matrix.positions, length, overlap, use_position=options.use_position,
                      device=device, precision=precision, batch_size=options.predict_batch_size, features=features)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds_taken = time.perf_counter() - start
        flops = flops_per_cell
    cells_per_s = n_samples * n_variants / seconds_taken
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
        memory_kind = "GPU allocated"
    else:
        peak_mb = peak_rss_mb() - rss_before
        memory_kind = "RSS above start"
    return {
        "imputer": name, "preset": preset, "layout": "full-length" if (name == "scda" and not options.segmented) else "segments",
        "length": length, "overlap": overlap, "mode": mode, "device": str(device), "threads": threads,
        "precision": precision.name, "params": count_parameters(model), "batch": step_batch, "samples": n_samples,
        "cells_per_s": cells_per_s, "gflop_per_cell": flops / 1e9, "gflop_per_s": cells_per_s * flops / 1e9,
        "peak_mb": peak_mb, "memory_kind": memory_kind, "estimate_mb": estimate_mb,
    }


def _measure_in_child(queue, *args) -> None:
    try:
        queue.put(measure(*args))
    except Exception as exc:  # reported in the table
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def speed_table(args) -> list[dict]:
    context = multiprocessing.get_context("spawn")
    rows = []
    for name, preset, segmented in args.configs:
        for mode in ("train", "inference"):
            # BiU-Net's paper batch (1024 segments) is too big for a CPU; paper6's (8 whole
            # sequences) is too small for 128-SNP segments: both get --paper-batch segments.
            big = (name == "biunet" and preset == "paper" and args.device == "cpu")
            batch = args.paper_batch if (big or (name == "scda" and preset == "paper6" and segmented)) else None
            queue = context.Queue()
            child = context.Process(target=_measure_in_child, args=(
                queue, name, preset, segmented, mode, args.device, args.seconds, args.threads, args.snps, batch))
            child.start()
            row = queue.get()
            child.join()
            row.update({k: v for k, v in (("imputer", name), ("preset", preset), ("mode", mode)) if k not in row})
            row.setdefault("layout", "segments" if segmented or name != "scda" else "full-length")
            rows.append(row)
            print(f"  measured {name} {preset} {row['layout']} {mode}: "
                  + (row.get("error") or f"{row['cells_per_s']:,.0f} cells/s"), file=sys.stderr, flush=True)
    return rows


def print_speed(rows: list[dict], n_variants: int) -> None:
    print(f"\n## Throughput (random genotypes, {n_variants:,} SNPs per sample; segments L={SEGMENT_LENGTH}, "
          f"O={SEGMENT_OVERLAP}; full length = one sequence per sample padded to the pooling multiple)\n")
    print("| imputer | preset | layout | mode | device | threads | precision | params | batch | samples timed "
          "| cells/s | GFLOP/cell | GFLOP/s | peak memory (MB) | SCDA estimate (MB) |")
    print("|---|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['imputer']} | {r['preset']} | {r['layout']} | {r['mode']} | failed: {r['error']} |||||||||||")
            continue
        estimate = f"{r['estimate_mb']:,.0f}" if r.get("estimate_mb") is not None else "-"
        layout = r["layout"] + (f" ({r['length']:,})" if r["layout"] == "full-length" else "")
        print(
            f"| {r['imputer']} | {r['preset']} | {layout} | {r['mode']} | {r['device']} | {r['threads']} | {r['precision']} "
            f"| {r['params']:,} | {r['batch']} | {r['samples']:,} | {r['cells_per_s']:,.0f} | {r['gflop_per_cell']:.2e} "
            f"| {r['gflop_per_s']:.1f} | {r['peak_mb']:,.0f} ({r['memory_kind']}) | {estimate} |"
        )


def accuracy_table(args) -> None:
    options = {}
    if args.scda_preset:
        options["scda"] = {"preset": args.scda_preset}
    if args.biunet_preset:
        options["biunet"] = {"preset": args.biunet_preset}
    neural_common.accuracy_table(
        dataset=args.dataset, names=["scda", "biunet", "major", "knn"], with_beagle=args.beagle, options=options,
        out=args.out, run_name=args.run_name, device=args.device, threads=args.threads,
        command="benchmarks/scda.py", info_for=["scda", "biunet"],
    )


def _parse_configs(text: str) -> list[tuple[str, str, bool]]:
    """``scda:cpu,scda:paper6:segmented,biunet:cpu`` -> (imputer, preset, segmented) rows."""
    configs = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        parts = item.split(":")
        name, preset = parts[0], parts[1] if len(parts) > 1 else "cpu"
        segmented = name != "scda" or (len(parts) > 2 and parts[2] == "segmented")
        configs.append((name, preset, segmented))
    return configs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    default_configs = ",".join(f"{n}:{p}" + (":segmented" if s and n == "scda" else "") for n, p, s in CONFIGS)
    parser.add_argument("--configs", default=default_configs,
                        help="speed rows, comma list of IMPUTER:PRESET[:segmented] (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--seconds", type=float, default=10.0, help="about how long each speed measurement runs")
    parser.add_argument("--snps", type=int, default=5939, help="SNPs per sample in the speed part")
    parser.add_argument("--paper-batch", type=int, default=64,
                        help="segments per batch of biunet's paper preset on CPU (its own: 1024) and of segmented paper6")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--dataset", default="sim-1kgp")
    parser.add_argument("--scda-preset", default=None, help="scda preset of the accuracy run (default: cpu)")
    parser.add_argument("--biunet-preset", default=None, help="biunet preset of the accuracy run (default: cpu)")
    parser.add_argument("--beagle", action="store_true", help="add beagle to the accuracy run when installed")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "impbench-bench"), help="results folder of the accuracy run")
    parser.add_argument("--run-name", default=None, help="run name (reuse it to resume)")
    args = parser.parse_args(argv)
    args.configs = _parse_configs(args.configs)
    if args.threads is None:
        args.threads = len(os.sched_getaffinity(0))
    print(f"# SCDA benchmark ({time.strftime('%Y-%m-%d %H:%M')}, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}, "
          f"{len(os.sched_getaffinity(0))} cores)")
    if not args.skip_speed:
        print_speed(speed_table(args), args.snps)
    if not args.skip_accuracy:
        accuracy_table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
