"""Alert outputs: stdout, JSONL file, webhook, Slack, syslog and NATS, each filtered and rate limited.

outputs = load_outputs("outputs.yaml")     # or Outputs([Route(StdoutOutput())])
outputs.send(alerts)                        # never raises, never blocks on delivery
outputs.close()                             # delivers what is queued, then closes
"""

from __future__ import annotations

from kubetrail.alert.outputs.base import Output, OutputError
from kubetrail.alert.outputs.fanout import Outputs, OutputStats, Route
from kubetrail.alert.outputs.jsonl import JsonlFileOutput
from kubetrail.alert.outputs.ratelimit import Rate, TokenBucket, parse_rate
from kubetrail.alert.outputs.slack import SlackOutput, slack_payload
from kubetrail.alert.outputs.stdout import StdoutOutput
from kubetrail.alert.outputs.syslog import SyslogOutput, format_message
from kubetrail.alert.outputs.webhook import WebhookOutput

__all__ = [
    "JsonlFileOutput",
    "Output",
    "OutputError",
    "OutputStats",
    "Outputs",
    "Rate",
    "Route",
    "SlackOutput",
    "StdoutOutput",
    "SyslogOutput",
    "TokenBucket",
    "WebhookOutput",
    "format_message",
    "parse_rate",
    "slack_payload",
]
