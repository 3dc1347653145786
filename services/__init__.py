"""streamops services: independent processes that talk only over Kafka, plus shared plumbing in `common`."""
