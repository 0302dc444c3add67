"""Logger throughput, side by side, in one process: opswatch vs structlog, picologging, stdlib, loguru.

Every logger writes the same payload as JSON lines to a real file: a message, an operation, four fields
and a nested dict holding a card number and a password. Each runs without and with redaction (the peers
get one equivalent redaction processor: a recursive walk with a key denylist and a card-number pattern).
The last table is the cost of a call below the level. Prints µs per call and the ratio to structlog.

The peers write and flush every line (structlog's BytesLogger, logging's and picologging's handlers,
loguru's line-buffered file). opswatch's console sink buffers up to 256 lines (or a fraction of a second)
per write, so it is measured twice: "line by line", flushed after every call as the peers are (the like
for like figure), and "buffered", as it runs by default.

    .venv/bin/python benchmarks/bench_logger.py [--calls 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import orjson

PAYLOAD: dict[str, Any] = {
    "operation": "donations.create.success",
    "donation_id": "don_8f2c1a",
    "amount": 100,
    "currency": "USD",
    "church_id": "church-123",
    "payment": {"card_number": "4242 4242 4242 4242", "password": "hunter2", "method": "card"},
}
MESSAGE = "Donation created successfully"

# -- the peers' redaction processor ------------------------------------------------------------------

_DENY = frozenset(
    {"password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "cookie", "card_number"}
)
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


def simple_redact(value: Any) -> Any:
    """A plain recursive redactor: censor denylisted keys, mask card-shaped digit runs in strings."""
    if isinstance(value, dict):
        return {
            k: "[REDACTED]" if k.lower() in _DENY else simple_redact(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [simple_redact(v) for v in value]
    if isinstance(value, str):
        return _CARD.sub("[REDACTED]", value)
    return value


# -- setups: each returns (log_call, disabled_call, close) -------------------------------------------

Setup = tuple[Callable[[], None], Callable[[], None], Callable[[], None]]


def setup_opswatch(path: str, redact: bool, *, per_line: bool) -> Setup:
    """opswatch's JSON console sink on a file; ``per_line`` flushes after every call, as the peers do."""
    import opswatch

    stream = open(path, "w")  # noqa: SIM115 - closed by close()
    opswatch.init(stream=stream, format="json", level="info", redact=redact, capture_stdlib=False,
                  service="bench", environment="production")
    log = opswatch.get_logger("bench")
    fields = PAYLOAD

    flush = opswatch.flush

    def call() -> None:
        log.info(MESSAGE, **fields)

    def call_and_flush() -> None:
        log.info(MESSAGE, **fields)
        flush()

    def disabled() -> None:
        log.debug(MESSAGE, **fields)

    def close() -> None:
        opswatch.shutdown()
        stream.close()

    return (call_and_flush if per_line else call), disabled, close


def setup_structlog(path: str, redact: bool) -> Setup:
    import structlog

    stream = open(path, "wb")  # noqa: SIM115
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if redact:
        processors.append(lambda _l, _m, event: simple_redact(event))
    processors.append(structlog.processors.JSONRenderer(serializer=orjson.dumps))
    structlog.configure(
        cache_logger_on_first_use=True,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        processors=processors,
        logger_factory=structlog.BytesLoggerFactory(stream),
    )
    log = structlog.get_logger("bench")

    def call() -> None:
        log.info(MESSAGE, **PAYLOAD)

    def disabled() -> None:
        log.debug(MESSAGE, **PAYLOAD)

    def close() -> None:
        structlog.reset_defaults()
        stream.close()

    return call, disabled, close


class _OrjsonFormatter(logging.Formatter):
    def __init__(self, redact: bool) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: Any) -> str:
        data = {"timestamp": record.created, "level": record.levelname, "logger": record.name,
                "message": record.getMessage(), **record.__dict__.get("fields", {})}
        if self.redact:
            data = simple_redact(data)
        return orjson.dumps(data).decode()


def setup_picologging(path: str, redact: bool) -> Setup:
    import picologging

    logger = picologging.Logger("bench", picologging.INFO)
    handler = picologging.FileHandler(path, mode="w")
    handler.setFormatter(_OrjsonFormatter(redact))  # type: ignore[arg-type]
    logger.addHandler(handler)

    def call() -> None:
        logger.info(MESSAGE, extra={"fields": PAYLOAD})

    def disabled() -> None:
        logger.debug(MESSAGE, extra={"fields": PAYLOAD})

    def close() -> None:
        handler.close()

    return call, disabled, close


def setup_stdlib(path: str, redact: bool) -> Setup:
    from pythonjsonlogger.json import JsonFormatter

    class Formatter(JsonFormatter):
        def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
            return simple_redact(log_record) if redact else log_record

    logger = logging.getLogger("bench.stdlib")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)

    def call() -> None:
        logger.info(MESSAGE, extra=PAYLOAD)

    def disabled() -> None:
        logger.debug(MESSAGE, extra=PAYLOAD)

    def close() -> None:
        logger.removeHandler(handler)
        handler.close()

    return call, disabled, close


def setup_loguru(path: str, redact: bool) -> Setup:
    from loguru import logger

    logger.remove()

    def patch(record: Any) -> None:
        if redact:
            record["extra"] = simple_redact(record["extra"])

    sink_id = logger.add(path, serialize=True, level="INFO", enqueue=False)
    log = logger.patch(patch)

    def call() -> None:
        log.info(MESSAGE, **PAYLOAD)

    def disabled() -> None:
        log.debug(MESSAGE, **PAYLOAD)

    def close() -> None:
        logger.remove(sink_id)

    return call, disabled, close


PEERS: dict[str, Callable[[str, bool], Setup]] = {
    "opswatch line by line": functools.partial(setup_opswatch, per_line=True),
    "opswatch buffered": functools.partial(setup_opswatch, per_line=False),
    "structlog": setup_structlog,
    "picologging+orjson": setup_picologging,
    "stdlib+python-json-logger": setup_stdlib,
    "loguru serialize": setup_loguru,
}


def measure(fn: Callable[[], None], calls: int, rounds: int) -> float:
    """Best (lowest) µs per call over ``rounds`` rounds of ``calls`` calls.

    CPU time of this process, not wall time: the machines are shared, and a logger's cost is its CPU.
    (The file writes are buffered, so the I/O a call waits for is counted too, as system time.)
    """
    results = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            fn()
        results.append((time.process_time() - start) / calls * 1e6)
    return min(results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    table: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, setup in PEERS.items():
            for redact in (False, True):
                try:
                    call, disabled, close = setup(os.path.join(tmp, f"{name}-{redact}.log"), redact)
                except ImportError as err:
                    print(f"skipping {name}: {err}", file=sys.stderr)
                    break
                call()  # warm up (first-use caches)
                row = table.setdefault(name, {})
                row["redacted" if redact else "plain"] = measure(call, args.calls, args.rounds)
                if not redact:
                    row["disabled"] = measure(disabled, args.calls * 5, args.rounds)
                close()
    base = table["structlog"]
    print(f"\nµs per call, JSON lines to a file, {args.calls} calls x {args.rounds} rounds (best of rounds)\n")
    print(f"{'logger':<28}{'plain':>9}{'x sl':>7}{'redacted':>10}{'x sl':>7}{'disabled':>10}{'x sl':>7}")
    for name, row in table.items():
        cells = ""
        for column in ("plain", "redacted", "disabled"):
            value = row.get(column, float("nan"))
            cells += f"{value:>{10 if column != 'plain' else 9}.2f}{value / base[column]:>7.2f}"
        print(f"{name:<28}{cells}")
    print()
    for name in ("opswatch line by line", "opswatch buffered"):
        ops = table[name]
        print(
            f"{name} vs structlog: throughput {base['plain'] / ops['plain']:.2f}x plain, "
            f"{base['redacted'] / ops['redacted']:.2f}x redacted; "
            f"disabled call {ops['disabled'] / base['disabled']:.2f}x structlog's cost"
        )
    print("(line by line flushes every line as the peers do: that is the like-for-like row)")


if __name__ == "__main__":
    main()
