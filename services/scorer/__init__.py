"""Scorer: streaming inference with hot-swapped ONNX models.

Consumes: `events` (FeatureEvent, consumer group); replays `models` and `deployments`.
Produces: `predictions` (Prediction: champion, challenger and A/B rows), `deadletter` (also
Deployment records refused for their signature or revision),
`review` (humility routing), `breaches` (health).
Stores: nothing durable; model sessions in memory.
Exports: Prometheus metrics on `/metrics`.
"""
