import os, time
from pathlib import Path
from tests.test_sink_server import *  # noqa

def test_dbg(tmp_path, make_sink):
    port = free_port()
    sink = make_sink(f"http://{KEY}@127.0.0.1:{port}/1", max_spool_bytes=600, backoff_base=5.0)
    for n in range(6):
        sink.write(record(f"batch {n}", padding=os.urandom(100).hex()))
        sink.flush(0.1)
    stats = sink.stats()
    before = spooled_files(tmp_path / "spool")
    kept = stats["backlog_records"]
    sink.close(0)
    after = spooled_files(tmp_path / "spool")
    returned = IngestServer(port)
    try:
        replay = make_sink(f"http://{KEY}@127.0.0.1:{port}/1")
        assert replay.flush(5.0)
        got = returned.messages()
        assert got == [f"batch {n}" for n in range(6 - kept, 6)], (stats, before, after, [ (p.name, p.stat().st_size) for p in (tmp_path/'spool').iterdir()])
    finally:
        returned.stop()
