"""Several sources on one model: their frames taken in turn by the one inference loop.

``run_camera.py --source A --source B`` opens one :class:`edge.sources.SourceStream` per
source and hands a :class:`MultiStream` to the runtime's loop (edge/runtime.py), which
sees it as one stream: one backend, one input buffer, one inference path. ``get`` takes
the next source in turn that has a frame (each live source keeps only its newest), so a
fast source cannot starve a slow one, and a source that is reconnecting or has ended is
simply passed over. The run ends when every source has ended. Output paths and URIs name
their source with ``{name}`` / ``{index}`` (:func:`for_source`). Python 3.6, numpy + OpenCV.
"""
import collections
import os
import time

from edge.sources import SourceURI
from nanoseg.errors import NanosegError

TEMPLATE_FIELDS = ("{name}", "{index}")
POLL = 0.005  # s between looks at the sources while none has a frame


class SourceFrame(object):
    """A captured frame and the index of the source it came from."""

    __slots__ = ("index", "name", "image", "time", "source")

    def __init__(self, frame, source):
        self.index = frame.index
        self.name = frame.name
        self.image = frame.image
        self.time = frame.time
        self.source = source


def source_names(sources):
    """A short, unique, file-name-safe name per ``--source``: a file's stem, ``csi0``,
    ``video0``, an RTSP host; a repeated name gets ``-2``, ``-3``..."""
    names, seen = [], collections.Counter()
    for text in sources:
        uri = SourceURI(text)
        if uri.scheme in ("rtsp", "rtsps", "rtp", "http", "https"):
            base = "{}{}".format(uri.host or uri.scheme, uri.path or "")
        elif uri.scheme == "csi":
            base = "csi{}".format(uri.device if uri.device is not None else "")
        elif uri.scheme == "v4l2":
            base = "video{}".format(uri.device) if isinstance(uri.device, int) else \
                os.path.basename(str(uri.path))
        else:
            path = str(uri.path).rstrip("/\\")
            base = os.path.splitext(os.path.basename(path))[0] if not uri.pattern else \
                os.path.basename(os.path.dirname(path))
        base = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in base).strip("._")
        base = base or "source"
        seen[base] += 1
        names.append(base if seen[base] == 1 else "{}-{}".format(base, seen[base]))
    return names


def for_source(text, name, index):
    """``text`` with ``{name}`` and ``{index}`` replaced (nothing else is touched: an RTSP
    URI's other braces stay as they are)."""
    return str(text).replace("{name}", name).replace("{index}", str(index))


def has_template(text):
    return any(field in str(text) for field in TEMPLATE_FIELDS)


def check_templates(outputs, count):
    """With several sources, every per-source output must name its source: a one-line
    error for the first (flag, value) in ``outputs`` that has no ``{name}`` / ``{index}``."""
    if count < 2:
        return
    for flag, value in outputs:
        if value and not has_template(value):
            raise NanosegError(
                "{} {} would be written by all {} sources: put {{name}} or {{index}} in it "
                "(e.g. {})".format(flag, value, count, example_template(value)))


def example_template(value):
    root, ext = os.path.splitext(str(value).rstrip("/"))
    return "{}_{{name}}{}".format(root, ext)


class MultiStream(object):
    """N started streams behind the one-stream interface the runtime's loop reads.

    ``get(timeout)`` returns a :class:`SourceFrame` from the next source in turn that has a
    frame, or None; ``finished`` once every source ended. Counts (captured, dropped,
    reconnects, stalls) are sums; :meth:`source_summaries` and :meth:`states` are per
    source. ``error`` is the first source's error, once every source has ended (a lost
    camera does not stop the others).
    """

    def __init__(self, streams, names):
        if len(streams) != len(names) or not streams:
            raise ValueError("one name per stream, at least one stream")
        self.streams = list(streams)
        self.names = list(names)
        self.taken = [0] * len(self.streams)
        self._next = 0

    @property
    def live(self):
        return any(s.live for s in self.streams)

    @property
    def description(self):
        return ", ".join(s.description for s in self.streams)

    @property
    def fps(self):
        rates = [s.fps for s in self.streams if s.fps]
        return max(rates) if rates else None

    def get(self, timeout=None):
        """The next source's frame in turn (each source at most once per round)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            count = len(self.streams)
            for step in range(count):
                index = (self._next + step) % count
                frame = self.streams[index].get(timeout=0)
                if frame is not None:
                    self._next = (index + 1) % count
                    self.taken[index] += 1
                    return SourceFrame(frame, index)
            if self.finished or (deadline is not None and time.monotonic() >= deadline):
                return None
            time.sleep(POLL)

    @property
    def finished(self):
        return all(s.finished for s in self.streams)

    @property
    def end_reason(self):
        return self._per_source("end_reason")

    @property
    def error(self):
        return self._per_source("error")

    def _per_source(self, attribute):
        """One source's value as it is; several as ``name: value; ...`` (those set)."""
        if len(self.streams) == 1:
            return getattr(self.streams[0], attribute)
        parts = ["{}: {}".format(name, getattr(s, attribute))
                 for name, s in zip(self.names, self.streams) if getattr(s, attribute)]
        return "; ".join(parts) if parts else None

    def _total(self, attribute):
        return sum(getattr(s, attribute, 0) for s in self.streams)

    @property
    def captured(self):
        return self._total("captured")

    @property
    def dropped(self):
        return self._total("dropped")

    @property
    def reconnects(self):
        return self._total("reconnects")

    @property
    def stalls(self):
        return self._total("stalls")

    def stop(self):
        for stream in self.streams:
            stream.stop()

    def states(self):
        """Per source: name, state (live / reconnecting / ended), reconnects, frames."""
        out = []
        for index, (name, stream) in enumerate(zip(self.names, self.streams)):
            if stream.finished or stream.end_reason:  # at its end, or stopped
                state = "ended"
            elif getattr(stream, "reconnecting", False):
                state = "reconnecting"
            else:
                state = "live"
            out.append(collections.OrderedDict([
                ("index", index), ("name", name), ("state", state),
                ("reconnects", stream.reconnects), ("captured", stream.captured),
                ("dropped", stream.dropped), ("processed", self.taken[index])]))
        return out

    def source_summaries(self):
        """The run summary's ``sources``: each source's counts, end and error."""
        out = self.states()
        for entry, stream in zip(out, self.streams):
            entry["source"] = stream.description
            entry["end_reason"] = stream.end_reason
            entry["error"] = stream.error
        return out

