"""Alerting: breaches become grouped, deduplicated, signed webhook alerts and retrain requests.

Consumes: `breaches` (ThresholdBreach), `deployments`, `retrain_outcomes` (RetrainOutcome: a
retrain that failed or was refused is an alert too, and an outcome ends the retrain it answers).
Produces: webhooks to receivers, `retrain` (RetrainRequest), `deadletter`.
Stores: groups, silences and the delivery outbox in Redis.
Exports: HTTP API for silences/acks, `streamops webhook verify|sink`, Prometheus metrics.
"""
