"""results.json, reproduce's stage cache: a stage is reused while its settings and its artifact hold."""
import json
import os
import time

from utils import atomic
from utils.errors import UserError


class Stages:
    """results.json: what each stage ran with and produced; reused when both still hold.

    A stage's settings are every flag value its procedure reads (config/flag_use.py) plus
    fingerprints of the artifacts it reads, so any change that can change its result redoes it."""

    def __init__(self, path):
        self.path = path
        self.state, self.table = {}, {}   # table: the last table written, kept beside the stages
        self.visited = set()   # this invocation's stages: others stay on file for later reuse, off its table
        if os.path.exists(path):
            try:
                with open(path) as f:
                    saved = json.load(f)
                self.state = saved.pop("stages", {})
                self.table = saved
            except (OSError, ValueError):
                print(f"[reproduce] {path} is unreadable; redoing every stage")

    def run(self, name, settings, work, still_valid, start_over=None):
        """start_over: removes the stage's own checkpoints, so that a stage begun (or finished) with other
        settings is not resumed from them."""
        settings = json.loads(json.dumps(settings))   # as results.json reads back
        self.visited.add(name)
        record = self.state.get(name)
        if record and record["settings"] == settings and "result" in record:
            try:
                still_valid(record["result"])
                print(f"[reproduce] {name}: reusing the finished result")
                return record["result"]
            except (UserError, OSError, KeyError) as e:
                print(f"[reproduce] {name}: the saved artifact does not hold up ({e}); redoing it")
        if record and record["settings"] != settings and start_over:
            changed = sorted(k for k in set(settings) | set(record["settings"])
                             if settings.get(k) != record["settings"].get(k))
            print(f"[reproduce] {name}: settings changed ({', '.join(changed)}); starting it over")
            start_over()
        print(f"[reproduce] {name}: running")
        self.state[name] = {"settings": settings}   # begun: a later run with other settings starts over
        self.save()
        t0 = time.time()
        result = work()
        # A stage resumed from an earlier invocation's pieces counts their time too.
        seconds = time.time() - t0 + result.get("earlier_pieces_seconds", 0)
        self.state[name] = {"settings": settings, "result": result, "wall_seconds": round(seconds, 1)}
        self.save()
        return result

    def save(self, **table):
        self.table = table or self.table
        atomic.save_json(self.path, {"stages": self.state, **self.table})
