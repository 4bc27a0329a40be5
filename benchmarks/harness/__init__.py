"""What the benchmark entry points (benchmarks/*.py) share: helpers and worker scripts.

Imported as ``harness.<module>`` with ``benchmarks/`` on ``sys.path``: an entry point
run as ``python benchmarks/<name>.py`` has it as ``sys.path[0]``, and every worker
started through :func:`harness.common.run_worker` (ours, and the peers' scripts in
their own venvs) gets it as ``PYTHONPATH``. Modules:

- ``common``: machine, versions, timing, worker runs, result files;
- ``bench_data``: the generated image folders;
- ``workers``: starting our training worker and the peers';
- ``steptimer``: the step timer every training worker reports through (imported by
  the peers' workers too, under their own Lightning: standard library and
  ``pytorch_lightning`` only);
- worker scripts, run by path in a process of their own: ``ours_train.py``,
  ``ntxent_worker.py``, ``views_worker.py``.

Nothing here imports ``simclr`` at import time, and this file imports nothing, so a
peer's interpreter can import ``harness.steptimer``.
"""
