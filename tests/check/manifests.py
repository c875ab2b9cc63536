"""kube-apiserver manifests laid out as the Kubernetes auditing documentation shows (log backend mounts)."""

from __future__ import annotations

GOOD_MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.31.0
    command:
    - kube-apiserver
    - --authorization-mode=Node,RBAC
    - --audit-policy-file=/etc/kubernetes/audit-policy.yaml
    - --audit-log-path=/var/log/kubernetes/audit/audit.log
    - --audit-log-maxage=30
    - --audit-log-maxbackup=10
    - --audit-log-maxsize=100
    volumeMounts:
    - mountPath: /etc/kubernetes/audit-policy.yaml
      name: audit
      readOnly: true
    - mountPath: /var/log/kubernetes/audit/
      name: audit-log
      readOnly: false
  volumes:
  - name: audit
    hostPath:
      path: /etc/kubernetes/audit-policy.yaml
      type: File
  - name: audit-log
    hostPath:
      path: /var/log/kubernetes/audit/
      type: DirectoryOrCreate
"""

GOOD_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    verbs: ["watch"]
  - level: None
    resources: [{group: coordination.k8s.io, resources: [leases]}]
  - level: None
    userGroups: ["system:nodes"]
    verbs: ["get"]
    resources: [{group: "", resources: [nodes, nodes/status]}]
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/metrics"]
  - level: None
    resources: [{group: "", resources: [events]}, {group: events.k8s.io, resources: [events]}]
  - level: Metadata
    resources:
      - {group: "", resources: [secrets, configmaps]}
      - {group: authentication.k8s.io, resources: [tokenreviews]}
  - level: Request
    resources: [{group: "", resources: [pods/exec, pods/attach, pods/portforward]}]
  - level: Metadata
"""
