"""The `kubetrail` command line: one command, a sub-command group per area."""
