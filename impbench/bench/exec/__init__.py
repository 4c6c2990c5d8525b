"""How work runs: the worker process, the local and inline executors, Slurm, the run lock,
process handling, signals, GPU slots and stage metering. The run model (what to run) is
``impbench.bench``; this package only runs it."""
