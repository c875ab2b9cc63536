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
    gke.py         GKE pull: a Cloud Logging sink's Pub/Sub subscription (google-cloud-pubsub, the `gcp` extra)
    pubsub_push.py GKE push: Pub/Sub push delivery, `POST /pubsub[/<cluster>]`, its OIDC token checked by oidc.py
    aks_storage.py AKS archive: the storage account's hourly `PT1H.json` blobs (azure-storage-blob, `azure`)
    aks_eventhub.py AKS stream: the diagnostic setting's Event Hub, checkpointed per partition (azure-eventhub)

Nothing here is imported unless serve has a source configured, and a cloud SDK only when its source opens.
"""
