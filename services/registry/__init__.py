"""Registry: the system of record for models, deployments, approvals and the audit trail.

Consumes: `models`, `deployments`, `governance`, `drift`, `breaches`; samples bounded tails of
`events`, `predictions` and `deadletter` for the dashboard's live figures.
Produces: `deployments` (Deployment, desired state, signed with the registry's own key),
`governance` (GovernanceEvent).
Stores: a materialized view in Redis, rebuildable from the topics.
Exports: HTTP API (FastAPI, `/docs`), the ops dashboard (`/dashboard`), Prometheus metrics.
"""
