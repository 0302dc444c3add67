"""``opswatch serve`` freezes what is alive once the app is built and collects young objects less often
(``opswatch.server.gc_tuning``); checked in a child process, so this test's interpreter keeps its own."""

from __future__ import annotations

import json
import subprocess
import sys

from opswatch.server import gc_tuning


def test_tune_freezes_the_live_objects_and_raises_the_young_threshold() -> None:
    code = (
        "import gc, json; from opswatch.server import gc_tuning; before = gc.get_freeze_count(); "
        "gc_tuning.tune(); print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold(), gc.isenabled()]))"
    )
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, frozen, thresholds, enabled = json.loads(answer.stdout)
    assert before == 0 and frozen > 1000
    assert thresholds == [gc_tuning.YOUNG_THRESHOLD, *gc_tuning.OLDER_THRESHOLDS]
    assert enabled
