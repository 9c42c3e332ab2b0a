"""``make bench``: load generators and the report (DESIGN.md §8).

``python -m bench --section all|<name>[,<name>...]`` runs the registered sections (see ``bench/sections/``) on
``DATABASE_URL`` or an embedded Postgres under ``$WALLET_RUN_DIR/bench``, and writes ``bench/results/latest.json``
(figure name → value, unit, target, p50/p99 latency) and ``bench/results/latest.md``.

Load comes from C programs (pgbench, h2load), never from a Python client on the server's cores.
"""
