"""CPU seconds and peak RSS of each stage of `rtdrums train` (docs/training-speed.md), run in
this process; the RSS is sampled every 5 ms. Stages: loading a kit and its hits, then each
stage of the progress plan. Usage: python tests/train_stage_profile.py train --kit DIR --out OUT
"""
import os, sys, threading, time, resource
import rtdrums.commands.train as ct
from rtdrums.progress import Progress
from rtdrums import cli

page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
peak = [0]
stop = False
def sampler():
    while not stop:
        peak[0] = max(peak[0], rss()); time.sleep(0.005)
threading.Thread(target=sampler, daemon=True).start()
rows = []
mark = {"name": "loading kit + hits", "cpu": time.process_time(), "wall": time.perf_counter()}
def close_stage(next_name):
    now_cpu, now_wall = time.process_time(), time.perf_counter()
    rows.append((mark["name"], now_cpu - mark["cpu"], now_wall - mark["wall"], peak[0], rss()))
    mark.update(name=next_name, cpu=now_cpu, wall=now_wall); peak[0] = rss()

class P(Progress):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
    def __call__(self):
        before = self.stage
        super().__call__()
        if self.stage != before:
            close_stage(self.stages[self.stage].name if self.stage < len(self.stages) else "writing")
ct.Progress = P
_hk = ct.hits_from_kit
def hk(*a, **k):
    out = _hk(*a, **k); close_stage("learning templates"); return out
ct.hits_from_kit = hk
rc = cli.main(sys.argv[1:])
close_stage("end")
stop = True
print(f"{'stage':34s} {'CPU s':>7s} {'wall s':>7s} {'peak GB':>8s} {'end GB':>7s}", file=sys.stderr)
for n, c, w, p, e in rows:
    print(f"{n:34s} {c:7.1f} {w:7.1f} {p/1e9:8.2f} {e/1e9:7.2f}", file=sys.stderr)
print("ru_maxrss GB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, file=sys.stderr)
