"""The ``torchrun`` worker: ``python -m impbench.nn.launch SPEC.json``.

``SegmentImputer.fit`` writes ``<work_dir>/ddp/spec.json`` and the data (``panel.npz``) and
starts ``python -m torch.distributed.run --standalone --nproc_per_node N -m impbench.nn.launch
SPEC``. Every worker rebuilds the imputer from the spec, joins the process group (NCCL on CUDA,
gloo on CPU) and trains its share; rank 0 writes the checkpoints. On several nodes, run the same
command on each with the rendezvous arguments instead of ``--standalone`` (the work folder must
be on a shared file system), e.g.::

    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 \\
        --rdzv-backend c10d --rdzv-endpoint node0:29400 \\
        -m impbench.nn.launch results/sim-1kgp/run1/models/biunet/ddp/spec.json
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path

import numpy as np

from impbench.imputers.base import RunContext, options_from_json


def load_class(path: str) -> type:
    """The class named ``module:qualname``."""
    module_name, _, qualname = path.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    from impbench.nn.imputer import file_progress, torch_threads
    from impbench.nn.runtime import setup, teardown

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m impbench.nn.launch SPEC.json (started by torchrun)", file=sys.stderr)
        return 2
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    cls = load_class(spec["imputer"])
    imputer = cls(options_from_json(cls.Options, spec["options"], spec["imputer"]))  # checked, as every rebuild
    imputer.layout = tuple(spec["layout"])
    data = np.load(spec_path.parent / spec["data"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    env = setup(spec["device"])
    try:
        progress = file_progress(spec_path.parent / "progress.json") if env.is_main else (lambda *a: None)
        ctx = RunContext(
            work_dir=Path(spec["work_dir"]),
            device=spec["device"],
            threads=int(spec["threads"]),
            seed=int(spec["seed"]),
            nproc=env.world_size,
            progress=progress,
            logger=logging.getLogger(f"impbench.{imputer.name}.rank{env.rank}"),
            dataset=spec.get("dataset", ""),
            dataset_hash=spec.get("dataset_hash", ""),
        )
        with torch_threads(ctx.threads):
            imputer.train_process(data["train"], data["val"] if "val" in data else None, data["positions"], spec["fingerprint"], ctx, env)
    finally:
        teardown(env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
