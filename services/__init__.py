"""streamops services: independent processes that talk only over Kafka; plumbing in `common`."""
