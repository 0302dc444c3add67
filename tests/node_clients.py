"""Real Node.js clients for the tests: the pino app, and finding ``node`` and the npm packages.

``tests/node/package.json`` pins the packages (``npm ci`` there, as ``.ci/run`` does). Without ``node``
or the packages, ``require_node`` skips the test with the reason on a developer's machine, and fails it
under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

NODE_MODULES = Path(__file__).parent / "node" / "node_modules"

#: The app: a child logger with bindings, one line per level, and an error with a cause.
APP = """\
const pino = require('pino');
const logger = pino({ name: 'donations', level: 'trace' });
const request = logger.child({ requestId: 'req-81', churchId: 7 });
logger.trace('cache lookup');
logger.debug({ key: 'church:7' }, 'cache miss');
request.info('donation %s received', 'don-42');
request.warn({ amount: 3 }, 'low balance');
function chargeCard(donor) {
  const cause = new Error('socket hang up');
  throw new TypeError('card declined', { cause });
}
try {
  chargeCard({ email: 'jane.doe@example.com' });
} catch (err) {
  err.code = 'E_CARD';
  request.error({ err, donorEmail: 'jane.doe@example.com' }, 'payment failed');
}
logger.fatal('ledger unreachable');
"""
THROW_LINE = APP.splitlines().index("  throw new TypeError('card declined', { cause });") + 1
CALL_LINE = APP.splitlines().index("  chargeCard({ email: 'jane.doe@example.com' });") + 1
#: The level of each line the app writes, in order, on opswatch's scale.
LEVELS = {
    "cache lookup": "trace",
    "cache miss": "debug",
    "donation don-42 received": "info",
    "low balance": "warn",
    "payment failed": "error",
    "ledger unreachable": "fatal",
}


def _need(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI must have it: .ci/run installs tests/node)")
    pytest.skip(what)


def require_node(*tools: str) -> str:
    """The path of ``node``, once it, pino and the other ``tools`` (``curl`` ...) are all there."""
    found = shutil.which("node")
    if found is None:
        _need("node is not installed")
    if not (NODE_MODULES / "pino" / "package.json").is_file():
        _need("pino is not installed: run `npm ci` in tests/node")
    for tool in tools:
        if shutil.which(tool) is None:
            _need(f"{tool} is not installed")
    return str(found)


def node_env(**extra: str) -> dict[str, str]:
    """The environment for ``node app.js``: the packages on ``NODE_PATH``, no proxy for 127.0.0.1."""
    return {**os.environ, "NODE_PATH": str(NODE_MODULES), "NO_PROXY": "127.0.0.1", **extra}
