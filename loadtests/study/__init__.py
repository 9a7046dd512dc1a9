"""The load study behind `make experiment`: phases that return typed results, run by one orchestrator.

    config.py    the knobs (full and --quick presets) and the time they imply, per phase
    context.py   what the phases share: the bench, the data folder, the status line, order reads
    ceilings.py  the SQS server's own ceiling at a backlog of 0 / 1k / 10k
    eta.py       the place in line's ETA against the actual paid times, in a flash sale drained to the end
    sync.py      sync checkout at the seed's load (provider limit 1, no worker), then behind its queue
    accept.py    async accept latency beside a trivial GET (same web, same Locust run): unlimited baskets,
                 1 unit of the limited product (hot); then the sold-out phase:
                 the hot product running out a third of the way in (202s, 409 out_of_stock, oversell)
    drain.py     the drain study, queued backlog then N threads, for each N and provider limit
    scaling.py   worker scaling under the seed's flash-sale load (Locust), then the drain watched
    capacity.py  the accept rate held with p99 < 100 ms
    saturation.py  wrk's closed loop (16 connections) on the GET and both checkouts: the stack's ceiling
    memory.py    prefork vs threads worker memory
    run.py       the orchestrator: phases in order, results.json after each, then loadtests/report.py

Each phase returns dataclasses of sizing/results.py (the one schema of results.json, which the
report, `recommend_workers` and `python -m deploy` read back). Every module but config.py reads
orders with the ORM, so it is imported after `django.setup()` (loadtests.experiment does it once
the bench has set Django up).

Time per phase, estimated from the parameters by `StudyConfig.estimate()` (fixed costs measured on
the 2-core lab machine; each phase bounded by the load seconds, caps and steps it waits for):

    phase              full (default)                                  s   --quick                           s
    stack              database, migrate, SQS server, sandbox, web    15   same                             15
    sqs ceilings       3 depths x (fill + 2 x 5 s + 2)                40   3 x (fill + 2 x 1.5 s + 2)       19
    eta accuracy       worker + Locust + 60 s + drain (N=100, 3 s)   151   N=20, 1 s, 10 s load             52
    sync checkout      60 s load + Locust + 3 restarts                75   10 s load                        25
    sync, queued       60 s load + Locust + 2 charges + 3 restarts    81   10 s load, 1 s charges           27
    async accept       2 x (60 s + Locust) + restock                 131   10 s, unlimited and hot          31
    sold out           60 s + Locust + restock                        66   10 s                             16
    drain study        10 x (worker + N x 20 or 8 waves) + orders    629   10 x (worker + 3 x 1 s / 0.8)   108
    flash-sale scaling 10 x (worker + Locust + 60 + 25 cap + 4)      970   6 x (5 + 3 + 10 + 3 + 4)        150
    capacity           7 steps x (Locust + 12 s + 4)                 133   1 step x (3 + 4 + 4)             11
    saturation         4 rounds x (3 x (10 s + 1) + 2 restarts)      165   2 rounds x (3 x (5 s + 1) + ...) 53
    memory             2 x (worker + 3 x 3 s / 0.8 + 4 + 2)           44   skipped                           0
    report                                                            10                                    10
    total                                        (see `python -m loadtests.experiment --help`)

Measured on the shared 2-core lab machine: --quick took 4.6 min against its 6.9 min estimate of the
time (before the fixed costs were recalibrated from that run); with the hot-product, sold-out and
saturation phases it took 6.0 min (360 s of phases) against its 6.8 min estimate.

The run prints its own estimate first and the report sets each phase's estimate beside its time.
"""
