"""Registry: the system of record for models, deployments, approvals and the audit trail.

Consumes: `models`, `deployments`, `governance`, `drift`.
Produces: `deployments` (Deployment, desired state), `governance` (GovernanceEvent).
Stores: a materialized view in Redis, rebuildable from the topics.
Exports: HTTP API (FastAPI, `/docs`), the ops dashboard, Prometheus metrics.
"""
