"""``python -m opswatch.server.workers LISTEN_FD CHANNEL_FD``: one ingest worker (started by the owner)."""

import sys

from .worker import main

sys.exit(main(sys.argv[1:]))
