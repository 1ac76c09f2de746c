"""`python -m bench`: the benchmark suite (bench/run.py); `python -m bench --help` for its options.
One scenario by hand: `python -m bench.bench_payments --size 10k --quick` (from the repository
root, with the project's virtualenv)."""

from bench.run import main

main()
