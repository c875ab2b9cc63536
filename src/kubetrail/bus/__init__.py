"""Scale-out on NATS JetStream: stateless receivers publish, a pool of workers consumes into a shared lake."""

from kubetrail.bus.config import BusConfig, BusError, parse_bus_url

__all__ = ["BusConfig", "BusError", "parse_bus_url"]
