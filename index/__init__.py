"""Building and querying the index."""

import os

# OpenMP threads that wait by spinning hold their core: on a machine where anything else runs (the
# server's own threads, a second process), a parallel region then finishes only when the descheduled
# thread gets its core back. Measured with one busy process beside it, torch bfloat16 on two threads
# encoded 3.0 chunks/s spinning against 22.5 waiting passively. libgomp reads this once, when torch
# loads it, so it is set before anything here imports torch; a value in the environment is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
