"""Ingest: turning request bodies (native NDJSON, Sentry envelopes, pings) into validated records.

Each module here parses one wire format into records in the SDK's shape and a list of rejections; none
of them touches the store. ``opswatch.server.pipeline`` redacts and stores what they produce, and the
HTTP handlers in ``opswatch.server.api`` only bound the body, authenticate and call the two.
"""
