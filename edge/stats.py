"""Per-frame statistics: ``--stats FILE.jsonl`` and the numbers the dashboard shows.

The inference loop (edge/runtime.py) attaches :func:`frame_info` to every Result: its
source, frame index, capture time, the source's FPS, the per-stage ms of that frame and
whether the model output was finite. :class:`StatsSink` (delivery "every", on its own
worker) adds the class shares (:func:`edge.segmenter.class_shares` on the model-size
labels, ``--ignore-class`` left out), writes one JSON line per frame, flushed so another
program can tail the file, and keeps the newest record per source in a :class:`LiveStats`,
which the dashboard's ``/stats.json`` reads (edge/viewer/). Python 3.6, numpy only.
"""
import collections
import json
import logging
import threading
import time

from edge.segmenter import class_shares
from nanoseg.errors import NanosegError
from nanoseg.files import check_writable

LOG = logging.getLogger(__name__)
RATE_WINDOW = 30  # frames the per-source FPS is measured over (as the overlay's)


def takes(sink, result):
    """True when ``sink`` (or the sink a worker wraps) gets ``result``: a sink with a
    ``source_index`` only gets that source's frames; the others get every source's."""
    inner = getattr(sink, "sink", sink)
    index = getattr(inner, "source_index", None)
    return index is None or index == result.source


def ms_since(start):
    return round((time.monotonic() - start) * 1000.0, 3)


class SourceRates(object):
    """Frames per second of each source over its last RATE_WINDOW frames."""

    def __init__(self, window=RATE_WINDOW):
        self.window = max(int(window), 2)
        self._times = {}

    def tick(self, source, now=None):
        times = self._times.setdefault(source, collections.deque(maxlen=self.window))
        times.append(time.monotonic() if now is None else now)
        span = times[-1] - times[0]
        return (len(times) - 1) / span if len(times) > 1 and span > 0 else 0.0


def frame_info(frame, source, latest_stages, non_finite, rates):
    """The loop's facts about one processed frame (the render thread adds ``render``).

    ``capture_time`` is the wall clock (Unix seconds) when the frame was captured:
    frames are stamped with the monotonic clock, converted here once.
    """
    now = time.monotonic()
    info = collections.OrderedDict()
    info["source"] = source
    info["frame"] = frame.index
    info["capture_time"] = round(time.time() - (now - frame.time), 4)
    info["fps"] = round(rates.tick(source, now), 3)
    info["stages_ms"] = collections.OrderedDict(
        (name, round(ms, 3)) for name, ms in latest_stages if name != "render")
    info["stages_ms"]["render"] = 0.0  # the render thread's, when it draws this frame
    info["non_finite"] = bool(non_finite)
    return info


def resolve_ignored(names, contract):
    """``--ignore-class`` names -> label ids; an unknown name is refused listing the classes."""
    classes = list(contract.class_names)
    ids = []
    for name in names:
        if name not in classes:
            raise NanosegError("--ignore-class {}: this model has no such class; its classes "
                               "are {}".format(name, ", ".join(classes)))
        ids.append(classes.index(name))
    return sorted(set(ids))


class LiveStats(object):
    """The newest numbers of a running pipeline, for ``/stats.json`` and the dashboard.

    :class:`StatsSink` feeds one record per frame; :meth:`attach` (called by run_pipeline)
    gives it the streams (their states), the sinks (queue depths and waits) and the
    backend; :meth:`snapshot` is one JSON-ready dict of all of it.
    """

    def __init__(self, contract, names, bundle="", ignored=()):
        self.contract = contract
        self.names = list(names)
        self.bundle = str(bundle)
        self.ignored = list(ignored)
        self._lock = threading.Lock()
        self._records = {}
        self._frames = collections.Counter()
        self._non_finite = collections.Counter()
        self._stream = None
        self._render = None
        self._backend = None

    def attach(self, stream, render, backend):
        self._stream, self._render, self._backend = stream, render, backend

    def update(self, record):
        with self._lock:
            self._records[record["source"]] = record
            self._frames[record["source"]] += 1
            self._non_finite[record["source"]] += int(record["non_finite"])

    def model(self):
        backend = self._backend
        return collections.OrderedDict([
            ("bundle", self.bundle),
            ("backend", backend.describe() if backend is not None else None),
            ("precision", model_precision(backend))])

    def classes(self):
        out = []
        for label, (name, rgb) in enumerate(zip(self.contract.class_names,
                                                self.contract.colors)):
            out.append(collections.OrderedDict([
                ("name", name), ("color", "#{:02x}{:02x}{:02x}".format(*[int(c) for c in rgb])),
                ("ignored", label in self.ignored)]))
        return out

    def sources(self):
        states = self._stream.states() if hasattr(self._stream, "states") else \
            [{"index": i, "name": n} for i, n in enumerate(self.names)]
        with self._lock:
            records = dict(self._records)
            frames, non_finite = dict(self._frames), dict(self._non_finite)
        out = []
        for state in states:
            index = state["index"]
            entry = collections.OrderedDict(state)
            record = records.get(index)
            entry["stream"] = "/stream/{}.mjpg".format(index)
            entry["frames"] = frames.get(index, 0)
            entry["non_finite_frames"] = non_finite.get(index, 0)
            for key in ("frame", "capture_time", "fps", "stages_ms", "class_shares"):
                entry[key] = record[key] if record else None
            out.append(entry)
        return out

    def outputs(self):
        out = []
        sinks = list(self._render.sinks) if self._render is not None else []
        for sink in sinks:
            stats = sink.stats() if hasattr(sink, "stats") else {"sink": type(sink).__name__,
                                                                  "delivery": "inline"}
            entry = collections.OrderedDict([("sink", stats["sink"]),
                                             ("delivery", stats["delivery"])])
            inner = getattr(sink, "sink", sink)
            index = getattr(inner, "source_index", None)
            entry["source"] = self.names[index] if index is not None else "all"
            queue = getattr(sink, "queue", None)
            entry["queue"] = queue.qsize() if queue is not None else 0
            for key in ("queue_size", "max_queue", "waits", "wait_total_ms", "superseded",
                        "written"):
                if key in stats:
                    entry[key] = stats[key]
            out.append(entry)
        return out

    def snapshot(self):
        snap = collections.OrderedDict()
        snap["time"] = round(time.time(), 3)
        snap["model"] = self.model()
        snap["classes"] = self.classes()
        snap["sources"] = self.sources()
        snap["outputs"] = self.outputs()
        return snap


def model_precision(backend):
    """fp16 / fp32 / int8 as far as the backend says (an engine's file name: model-fp16-...)."""
    if backend is None:
        return None
    precision = getattr(backend, "precision", None)
    if precision:
        return precision
    engine = str(getattr(backend, "engine_path", "") or "")
    name = engine.replace("\\", "/").rsplit("/", 1)[-1]
    if name.startswith("model-"):
        return name.split("-")[1]
    return "fp32"


class StatsSink(object):
    """One JSON line per processed frame into ``path`` (if given) and the newest record per
    source into ``live`` (if given). Every frame, in order, on its own worker."""

    delivery = "every"
    needs_render = False
    wants_stop = False

    def __init__(self, contract, names, path=None, live=None, ignored=()):
        self.contract = contract
        self.names = list(names)
        self.path = path
        self.live = live
        self.ignored = list(ignored)
        self.written = 0
        self._file = None
        if path:
            check_writable(path, "--stats")
            try:
                self._file = open(path, "w")
            except OSError as exc:
                raise NanosegError("cannot write --stats {}: {}".format(path, exc))

    def record(self, result):
        info = result.info
        record = collections.OrderedDict()
        record["source"] = info["source"]
        record["name"] = self.names[info["source"]]
        record["frame"] = info["frame"]
        record["capture_time"] = info["capture_time"]
        record["fps"] = info["fps"]
        record["class_shares"] = collections.OrderedDict(
            (name, round(share, 6)) for name, share in
            sorted(class_shares(result.small_labels, self.contract, self.ignored).items(),
                   key=lambda item: self.contract.class_names.index(item[0])))
        record["stages_ms"] = info["stages_ms"]
        record["non_finite"] = info["non_finite"]
        return record

    def write(self, result):
        if result.info is None:
            return
        record = self.record(result)
        if self._file is not None:
            try:
                self._file.write(json.dumps(record) + "\n")
                self._file.flush()  # a line at a time: another program tails it
            except OSError as exc:
                raise NanosegError("cannot write --stats {}: {} (disk full?)".format(
                    self.path, exc))
        if self.live is not None:
            self.live.update(record)
        self.written += 1

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None
            LOG.info("wrote --stats %s (%d frames)", self.path, self.written)
