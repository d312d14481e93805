"""The notice a slow step prints (compiling on a cold cache), and its silence when fast."""

import io
import time

from rtdrums.host.notice import notice_if_slow


def test_a_slow_step_gets_one_line_and_a_quick_one_none():
    out = io.StringIO()
    with notice_if_slow("compiling", after_s=0.01, stream=out):
        deadline = time.monotonic() + 10
        while not out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert out.getvalue() == "compiling\n"
    quiet = io.StringIO()
    with notice_if_slow("compiling", after_s=30, stream=quiet):
        pass
    time.sleep(0.05)
    assert quiet.getvalue() == ""
