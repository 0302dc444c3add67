import os
from pathlib import Path
from tests.test_sink_server import IngestServer, KEY, free_port, record, spooled_files, make_sink  # noqa

def test_dbg(tmp_path, make_sink):
    port = free_port()
    sink = make_sink(f"http://{KEY}@127.0.0.1:{port}/1")
    for n in range(3):
        sink.write(record(f"first {n}"))
    assert not sink.flush(0.3)
    for n in range(3):
        sink.write(record(f"second {n}"))
    assert not sink.flush(0.3)
    files = spooled_files(tmp_path / "spool")
    st1 = sink.stats()
    returned = IngestServer(port)
    try:
        ok = sink.flush(5.0)
        got = returned.messages()
        assert got == [f"first {n}" for n in range(3)] + [f"second {n}" for n in range(3)], (ok, files, st1, sink.stats(), returned.requests, os.listdir(tmp_path / "spool"))
    finally:
        sink.close(2.0)
        returned.stop()
