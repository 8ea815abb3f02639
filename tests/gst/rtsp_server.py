"""A small RTSP server on 127.0.0.1 for the GStreamer tests: a folder of frames as H.264.

Run as its own process (``python3 rtsp_server.py --frames 'dir/frame%03d.png' ...``) so a
test can kill it, restart it on the same port, or freeze it with SIGSTOP, like a camera that
loses power or hangs. It prints ``READY <port>`` on stdout once it listens: the port is the
one asked for, or the one the kernel picked for ``--port 0``. The frames loop forever at
``--fps`` (a live camera never ends); with ``--user``/``--password`` the stream needs HTTP
basic credentials (RTSPAuth with a basic token; ``--digest``: digest only), like an IP
camera's. ``--tcp-only`` refuses RTP over UDP (461 Unsupported Transport), like a camera
behind a firewall that only lets its RTSP port through.

Needs Debian's python3-gi + gir1.2-gst-rtsp-server-1.0 (it is a test helper, not nanoseg
code: it never runs on the Jetson).
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

ROLE = "viewer"


def media_launch(frames, fps, quantizer):
    """The media pipeline: PNG frames looped at ``fps``, x264 at a constant quantizer.

    A constant quantizer (not a bit rate) keeps every frame's quality the same, so the tests'
    PSNR floor does not depend on how fast the scene changes; a key frame every second lets a
    client that (re)joins decode within a second.
    """
    return ("( multifilesrc location=\"{frames}\" loop=true "
            "caps=\"image/png, framerate=(fraction){fps}/1\" ! pngdec ! videoconvert ! "
            "video/x-raw, format=(string)I420 ! "
            "x264enc tune=zerolatency speed-preset=ultrafast pass=quant quantizer={q} "
            "key-int-max={fps} ! rtph264pay name=pay0 pt=96 config-interval=1 )").format(
                frames=frames, fps=int(fps), q=int(quantizer))


def require_auth(server, factory, user, password, digest=False):
    """Only ``user``:``password`` (HTTP basic, or digest only) may open ``factory``'s media."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", ROLE)
    if digest:
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_role_from_structure(Gst.Structure.new_from_string(
        "{},media.factory.access=(boolean)true,media.factory.construct=(boolean)true".format(
            ROLE)))
    factory.set_permissions(permissions)


def build_server(args):
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(media_launch(args.frames, args.fps, args.quantizer))
    # One media per client, like an IP camera's independent sessions. A shared media is
    # torn down when its last client leaves, and a DESCRIBE arriving meanwhile gets "503
    # Service Unavailable": nanoseg's own probe DESCRIBE right before rtspsrc's would race
    # with that (gst-rtsp-server's shared-factory behaviour, not a camera's).
    factory.set_shared(False)
    if args.tcp_only:
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    if args.user is not None:
        require_auth(server, factory, args.user, args.password or "", args.digest)
    server.get_mount_points().add_factory(args.mount, factory)
    return server


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", required=True, help="multifilesrc location: dir/f%%03d.png")
    parser.add_argument("--port", type=int, default=0, help="0: a free port, printed")
    parser.add_argument("--mount", default="/cam")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--quantizer", type=int, default=18)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--digest", action="store_true", help="digest instead of basic auth")
    parser.add_argument("--tcp-only", action="store_true", help="RTP interleaved in RTSP only")
    return parser.parse_args(argv)


def main(args):
    Gst.init(None)
    server = build_server(args)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print("error: cannot listen on 127.0.0.1:{}".format(args.port), file=sys.stderr)
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print("READY {}".format(server.get_bound_port()), flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
