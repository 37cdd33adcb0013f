"""``PYTHONPATH=. python3 -m benchmarks.gpu_check --out DIR``: see :mod:`benchmarks.gpu_check`."""

from benchmarks.gpu_check import main

raise SystemExit(main())
