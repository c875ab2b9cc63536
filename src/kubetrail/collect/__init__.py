"""Getting audit events in: the webhook receiver, the rotation-safe file tailer and the bulk readers."""
