"""run_camera's outputs: the sinks its flags ask for, one output family (edge/outputs/),
each source's own outputs with ``{name}`` / ``{index}`` filled in, and every path a run will
write (checked before the model loads)."""
import logging

from edge.camera_args import sources_of
from edge.collect import CollectSink
from edge.multisource import for_source, source_names
from edge.outputs import open_output, shows_every_source, written_path
from edge.sinks import ViewerSink
from edge.sources import SourceURI
from edge.stats import LiveStats, StatsSink

LOG = logging.getLogger("run_camera")


def make_sinks(args, stream_fps, live=False):
    """The sinks the flags ask for (the window unless --headless): each source's outputs
    (given only that source's frames when there are several), then the viewer and window,
    which show every source. ``live``: the sources are cameras or streams, so recordings
    hold frames to play in real time (edge/pacing.py).

    If one cannot be opened, those already opened are closed (the viewer frees its port).
    """
    sinks = []
    names = source_names(sources_of(args))
    try:
        fps = args.video_fps or stream_fps or 30.0
        names = source_names(sources_of(args))
        fps = args.video_fps or stream_fps or 30.0

        def open_one(uri, scheme, flag):
            return open_output(uri, fps, args.output_bitrate, scheme=scheme, flag=flag,
                               codec=args.output_codec, realtime=live, title=args.bundle,
                               view_fps=args.view_fps, sources=names)
        for index, name in enumerate(names):
            for uri, scheme, flag in source_requests(args):
                sink = open_one(for_source(uri, name, index), scheme, flag)
                if len(names) > 1:
                    sink.source_index = index  # edge.stats.takes: this source's frames only
                    sink.source_name = name  # in its log lines and the summary
                sinks.append(sink)
        for uri, scheme, flag in shared_requests(args):
            sinks.append(open_one(uri, scheme, flag))
    except BaseException:
        for sink in sinks:
            try:
                sink.close()
            except Exception as exc:  # the first error is the one to report
                LOG.warning("closing %s failed: %s", type(sink).__name__, exc)
        raise
    return sinks


def source_requests(args):
    """(URI, row or None, flag) of the outputs each source writes its own of, in one family
    (edge/outputs/): the --output URIs, and the older flags as the rows they are aliases of;
    ``{name}`` / ``{index}`` still unfilled."""
    requests = []
    if args.save_video:  # OpenCV's writer whatever the extension, as its help says
        requests.append((args.save_video, "video-file", "--save-video"))
    requests += [(uri, None, "--output") for uri in args.output
                 if not shows_every_source(uri)]
    if args.save_masks:
        requests.append(("masks://" + args.save_masks, None, "--save-masks"))
    return requests


def shared_requests(args):
    """(URI, row or None, flag) of the outputs that show every source at once: the browser
    viewer and the window."""
    requests = [(uri, None, "--output") for uri in args.output if shows_every_source(uri)]
    if args.view_port is not None:
        requests.append(("http://{}:{}/".format(args.view_host, args.view_port), None,
                         "--view-port"))
    if not args.headless:
        requests.append(("display://0", None, "--output"))
    return requests


def per_source_outputs(args):
    """(flag, value) of every output each source writes its own of."""
    return [("--save-video", args.save_video), ("--save-masks", args.save_masks)] + \
        [("--output", uri) for uri in args.output if not shows_every_source(uri)]


def written_paths(args):
    """(flag, path, is a folder) of every file or folder the run writes: checked before the
    model and the source open, so a typo is not found after the whole run."""
    paths = []
    for index, name in enumerate(source_names(sources_of(args))):
        for uri, scheme, flag in source_requests(args):
            uri = for_source(uri, name, index)
            where = (uri, False) if scheme is not None else written_path(uri)
            if where is not None:
                paths.append((flag, where[0], where[1]))
    if args.summary:
        paths.append(("--summary", args.summary, False))
    if getattr(args, "stats", None):
        paths.append(("--stats", args.stats, False))
    if getattr(args, "collect", None):
        paths.append(("--collect", args.collect, True))
    return paths


def collect_sinks(args, contract):
    """One --collect sink per source (a class change is a change in one camera's view), or
    [] without --collect (they hold nothing to close)."""
    if not args.collect:
        return []
    sources = sources_of(args)
    names = source_names(sources)
    sinks = []
    for index, (source, name) in enumerate(zip(sources, names)):
        several = len(sources) > 1
        sink = CollectSink(args.collect, contract, SourceURI(source).shown,
                           args.collect_uncertain, args.collect_every, args.collect_max,
                           args.collect_gap, tag=name if several else "")
        if several:
            sink.source_index = index  # edge.stats.takes: this source's frames only
            sink.source_name = name
        sinks.append(sink)
    return sinks


def stats_sinks(args, backend, sinks, ignored):
    """The --stats writer and the dashboard's numbers (a LiveStats the viewer serves)."""
    live = None
    for sink in sinks:
        if isinstance(sink, ViewerSink):
            live = LiveStats(backend.contract, source_names(sources_of(args)), args.bundle,
                             ignored)
            sink.viewer.stats_provider = live.snapshot
    if not (live or args.stats):
        return [], None
    return [StatsSink(backend.contract, source_names(sources_of(args)), args.stats, live,
                      ignored)], live
