"""Live cloud sources: doors that fetch (or are sent) a managed cluster's audit log from its cloud.

A source moves bytes; the intake decides what they mean and the pipeline stores them. Each hands the pipeline a
decoded Batch (`Pipeline.accept`, which returns after the WAL fsync) and only then advances its checkpoint, so
nothing acknowledged is lost and a restart reads nothing twice.

    base.py        the Source protocol, SourceStats, PollingSource (thread, backoff, health), Backoff
    checkpoint.py  durable per-source positions (`<store>/checkpoints/source-*.json`)
    config.py      serve's `sources:` entries → typed specs, one type per cloud (SOURCE_TYPES)
    metrics.py     `kubetrail_source_*{source}` in /metrics
    eks.py         EKS pull: CloudWatch Logs `kube-apiserver-audit-*` streams (boto3, the `aws` extra)
    firehose.py    EKS push: Amazon Data Firehose HTTP endpoint delivery, `POST /firehose[/<cluster>]`

Nothing here is imported unless serve has a source configured, and a cloud SDK only when its source opens.
"""
