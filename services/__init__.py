"""streamops services: independent processes talking only over Kafka; shared plumbing in `common`."""
