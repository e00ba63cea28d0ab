"""A line of progress every few seconds: step, rate, ETA and any scalars worth watching."""
import sys
import time


def _fmt_seconds(s):
    s = int(max(s, 0))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    def __init__(self, total, label, unit="steps", every_seconds=5.0, stream=None):
        self.total, self.label, self.unit = total, label, unit
        self.every = every_seconds
        self.stream = stream or sys.stdout
        self.start = self.last_print = time.time()
        self.done = 0

    def update(self, done, force=False, **scalars):
        self.done = done
        now = time.time()
        if not force and now - self.last_print < self.every and done < self.total:
            return
        self.last_print = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        extras = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in scalars.items() if v is not None)   # None: not measured yet
        eta_txt = _fmt_seconds(eta) if eta != float("inf") else "?"
        print(f"[{self.label}] {done}/{self.total} {self.unit} ({100.0 * done / max(self.total, 1):.0f}%) "
              f"{rate:.3g} {self.unit}/s ETA {eta_txt} {extras}".rstrip(),
              file=self.stream, flush=True)

    @property
    def elapsed(self):
        return time.time() - self.start
