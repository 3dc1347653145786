"""Shared plumbing for every streamops service (a library, not a service).

Settings, Kafka client configuration, topic names, Avro serde, the consume-handle-produce
runner with dead-lettering, metrics and the error taxonomy. Imports no service.
"""
