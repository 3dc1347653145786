"""Drift: windowed data drift, prediction drift, data quality and accuracy from delayed labels.

Consumes: `events`, `predictions`, `actuals`, `models` and `deployments` (only verified records:
``control``).
Produces: `drift` (DriftReport per window per deployment),
`breaches` (ThresholdBreach, firing and resolved), `deadletter` (records it cannot read,
records timed beyond ``max_future_skew_s``, records that make applying fail on their own,
control records refused for their signature or revision).
Stores: window aggregates, detector state and the prediction/actual join in Redis, with offsets.
Exports: Prometheus metrics on `/metrics`.
Runs as one process per group id (its state is one Redis namespace whose commit counter each
transaction checks, so two such processes would keep refusing each other's writes), or as N
processes started with ``--shards N --shard i``: each reads its own partitions into its own
namespace, and process 0 merges their windows into the reports (``merge``).
"""
