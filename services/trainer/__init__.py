"""Trainer: trains, validates, converts to ONNX, signs and publishes models as data.

Consumes: `retrain` (RetrainRequest) in long-running mode;
`events` + `actuals` for stream-slice training.
Produces: `models` (ModelPublished, compacted, key = model name); `retrain_outcomes`
(RetrainOutcome, key = deployment), one per retrain request answered.
Stores: nothing; the signing key lives under `var/keys`.
Exports: `streamops train`, `streamops keys init`.
"""
