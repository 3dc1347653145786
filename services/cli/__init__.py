"""The `streamops` command line: infra, topics, produce, consume, and each service's commands."""
