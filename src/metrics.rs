//! The Prometheus /metrics endpoint (to be filled).
