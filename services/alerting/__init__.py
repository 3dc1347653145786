"""Alerting: breaches become grouped, deduplicated, signed webhook alerts and retrain requests.

Consumes: `breaches` (ThresholdBreach), `deployments` (each one's champion and retrain triggers),
`retrain_outcomes` (RetrainOutcome: a retrain that failed or was refused is an alert too, and an
outcome ends the retrain it answers).
Produces: webhooks to receivers, `retrain` (RetrainRequest), `deadletter`.
Stores: groups, silences, the retrain policy (streaks, requests in flight, each deployment's
retrain triggers) and the delivery outbox in Redis; its API token in var/alerting/token (0600,
made at first start unless `api_token` is set).
Exports: HTTP API for silences/acks (changes need the token), `streamops webhook verify|sink`,
Prometheus metrics.
"""
