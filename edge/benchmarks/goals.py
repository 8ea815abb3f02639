"""The ratios the host path is judged by, computed from one run's results."""

GOALS = (  # (name, numerator, denominator, comparison, limit)
    ("loop + video + masks / bare loop (FPS)", "loop_video_masks", "bare_loop", ">=", 0.95),
    ("bare loop / raw inference (FPS over all frames / calls)", "bare_loop", "raw_inference",
     ">=", 0.95),
    ("preprocess / OpenCV lower bound (CPU ms)", "preprocess", "opencv_lower_bound", "<=",
     1.2),
    ("render 1280x720 / render lower bound (CPU ms)", "render", "render_lower_bound", "<=",
     1.5),
)
CPU_GOAL_MS = 8.0
MULTI_GOALS = (  # (name, value from the results, comparison, limit): edge/benchmarks/multi.py
    ("2 sources / 1 source, total FPS", lambda r: r["sources_2"]["fps"] /
     r["sources_1"]["fps"], ">=", 0.9),
    ("2 sources: slowest source / 1 source FPS", lambda r: min(
        r["sources_2"]["per_source_fps"]) / r["sources_1"]["fps"], ">=", 0.45),
    ("2 sources / 1 source, peak RSS", lambda r: r["sources_2"]["rss_mib"] /
     r["sources_1"]["rss_mib"], "<=", 1.25),
    ("loop + dashboard (1 client) / 1 source (FPS)", lambda r: r["loop_dashboard"]["fps"] /
     r["sources_1"]["fps"], ">=", 0.95),
)


def goal_value(results, key):
    """The number a goal compares: FPS of a loop or of inference, else the median ms."""
    entry = results.get(key)
    if entry is None:
        return None
    if key == "raw_inference":  # frames per second over all calls, like a loop's FPS
        return entry["mean_fps"]
    if key in ("bare_loop", "loop_video_masks"):
        return entry["fps"]
    return entry["cpu_median_ms"]  # host stages: CPU time, robust to the machine's load


def host_cpu_ms_per_frame(results):
    """Process CPU ms per frame of every host stage but encode: the bare loop's CPU minus
    inference's, plus the render's CPU (not wall: a CPU budget adds CPU times only)."""
    host = results["bare_loop"]["cpu_ms_per_frame"] - results["raw_inference"]["cpu_ms"] + \
        results["render"]["cpu_median_ms"]
    return round(max(host, 0.0), 3)


def ratios(results):
    """[{name, value, goal, met}] for the goals this run measured."""
    out = []
    for name, top, bottom, op, limit in GOALS:
        a, b = goal_value(results, top), goal_value(results, bottom)
        if a is None or not b:
            continue
        value = a / b
        met = value >= limit if op == ">=" else value <= limit
        out.append({"name": name, "value": round(value, 3), "goal": "{} {}".format(op, limit),
                    "met": bool(met)})
    for name, value_of, op, limit in MULTI_GOALS:
        try:
            value = value_of(results)
        except (KeyError, TypeError, ZeroDivisionError):  # not measured in this run
            continue
        met = value >= limit if op == ">=" else value <= limit
        out.append({"name": name, "value": round(value, 3), "goal": "{} {}".format(op, limit),
                    "met": bool(met)})
    cpu = results.get("host_cpu_ms_per_frame")
    if cpu is not None:
        out.append({"name": "host CPU per 720p frame, all stages but encode (ms)",
                    "value": cpu, "goal": "<= {}".format(CPU_GOAL_MS),
                    "met": bool(cpu <= CPU_GOAL_MS)})
    return out


def format_ratios(items):
    return "\n".join("- {}: {:.3f} (goal {}: {})".format(
        item["name"], item["value"], item["goal"], "met" if item["met"] else "missed")
        for item in items)
