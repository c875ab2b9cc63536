"""The pipeline: what happens to events after the intake decoded them, the same for every door.

`chain.Pipeline` validates the cluster, redacts, appends to a sink (the store or the bus) and keeps rejections
as dead letters; `detection.Detection` is the one detection runner, fed by the store with what became durable.
"""

from kubetrail.pipeline.chain import DEFAULT_CLUSTER, Outcome, Pipeline, Sink

__all__ = ["DEFAULT_CLUSTER", "Outcome", "Pipeline", "Sink"]
