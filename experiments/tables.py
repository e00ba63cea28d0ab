"""reproduce's table: results.md, results.json's table and results.png, from the stages' results."""
import os

from experiments.presets import (
    BEST_ROW,
    GENERATOR_ROWS,
    OBJECTIVES,
    PEERS,
    published,
    published_sources,
)
from utils import atomic


def settings_line(settings):
    """key=value pairs, a nested dict as key=(key=value, ...): readable where a raw dict is not."""
    def text(value):
        return "(" + ", ".join(f"{k}={v}" for k, v in value.items()) + ")" if isinstance(value, dict) else str(value)
    return " ".join(f"{k}={text(v)}" for k, v in settings.items())


def write_table(cfg, teacher, student, s, trained, reconstructions, distilled, stages, run_dir, show=True):
    paper = published(cfg.dataset, teacher.name, student.name)
    wall = {name: rec["wall_seconds"] for name, rec in stages.state.items()
            if "wall_seconds" in rec and name in stages.visited}
    teacher_row = "teacher (given, not trained)" if cfg.model_checkpoint else "teacher"
    rows = [(teacher_row, trained[teacher.name]["test_accuracy"],
             wall.get(f"evaluate {teacher.name}" if cfg.model_checkpoint else f"train {teacher.name}"), None),
            ("student trained on data", trained[student.name]["test_accuracy"], wall.get(f"train {student.name}"),
             None)]
    for row, result in distilled.items():
        made = reconstructions.get(row)
        agreement = made["teacher_agreement"] if made else None
        # The steps its stage ran with (results recorded by older versions do not name them).
        sample_steps = made["samples"] * stages.state[f"optimize_dataset {row}"]["settings"]["optimization_steps"] \
            if made else result.get("generated_samples")
        seconds = (wall.get(f"distill {row}") or 0) + (wall.get(f"optimize_dataset {row}") or 0)
        rows.append((row, result["test_accuracy"], seconds, agreement, sample_steps))
    order = [teacher_row, "student trained on data", "vanilla KD", "KD on noise"] + list(OBJECTIVES) + [BEST_ROW] + \
        list(PEERS) + list(GENERATOR_ROWS)
    rows = [r + (None,) * (5 - len(r)) for r in rows]
    rows.sort(key=lambda r: order.index(r[0]) if r[0] in order else len(order))
    table = [{"row": name, "test_accuracy": round(100 * acc, 2), "paper": paper.get(name),
              "wall_seconds": seconds, "teacher_assigns_intended_class": None if agree is None else
              round(100 * agree, 1), "synthesis_sample_steps": steps} for name, acc, seconds, agree, steps in rows]
    blank = lambda v: "" if v is None else v  # noqa: E731
    lines = [f"# {teacher.name} -> {student.name} on {cfg.dataset} (preset {s['preset']})", "",
             "Settings: " + settings_line(s) + f" rng_seed={cfg.rng_seed} "
             f"temperature={cfg.temperature:g}",
             "Protocol: every student is the last epoch's; none is chosen on test data.", "",
             "| row | test accuracy (%) | paper (%) | reconstructed samples the teacher assigns to their class (%) "
             "| synthesis (sample-steps; DAFL, DFAD: generated samples) | wall time (s) |", "|---|---|---|---|---|---|"]
    for r in table:
        steps = r["synthesis_sample_steps"]
        lines.append(f"| {r['row']} | {r['test_accuracy']:.2f} | {blank(r['paper'])} | "
                     f"{blank(r['teacher_assigns_intended_class'])} | {'' if steps is None else f'{steps:,}'} | "
                     f"{'' if r['wall_seconds'] is None else round(r['wall_seconds'])} |")
    sources = published_sources(cfg.dataset, teacher.name, student.name, [r["row"] for r in table])
    if sources:
        lines += ["", sources]
    lines += ["", "Stage wall times (s): " + ", ".join(f"{k} {v}" for k, v in wall.items()), ""]
    markdown = "\n".join(lines)
    atomic.save_bytes(os.path.join(run_dir, "results.md"), markdown.encode())
    stages.save(table=table, settings=s, teacher=teacher.name, student=student.name)
    from viz import compare_runs
    bars = {r["row"]: r["test_accuracy"] / 100 for r in table
            if r["row"] in OBJECTIVES + (BEST_ROW,) + tuple(PEERS) + tuple(GENERATOR_ROWS)}
    refs = {r["row"]: r["test_accuracy"] / 100 for r in table if r["row"] not in bars}
    compare_runs.plot(bars, refs, f"{teacher.name} -> {student.name} ({s['preset']})",
                      os.path.join(run_dir, "results.png"),
                      paper={r["row"]: r["paper"] / 100 for r in table if r["paper"] is not None}, announce=show)
    if show:
        print(markdown)
    return table
