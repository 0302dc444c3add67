"""Distributed tracing on the server: spans from OTLP, Sentry and the SDK, mapped to one row shape."""
