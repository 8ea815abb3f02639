"""edge.sources.uri: a source URI parsed once, credentials split off and redacted."""
import pytest

from edge.sources.uri import SourceURI, redact_uri, split_credentials
from nanoseg.errors import NanosegError

NOT_NETWORK = {"location": None, "host": None, "port": None, "user": None, "password": None,
               "query": {}}


def parsed(uri, **expected):
    """SourceURI(uri).fields() with every field ``expected`` names; the rest at defaults."""
    fields = SourceURI(uri).fields()
    defaults = dict(NOT_NETWORK, text=uri.strip(), shown=uri.strip(), location=uri.strip(),
                    device=None, pattern=False, extension="")
    defaults.update(expected)
    assert fields == defaults
    return fields


def test_redact_uri_hides_user_and_password():
    assert redact_uri("rtsp://admin:hunter2@10.0.0.5:554/live?ch=1") == \
        "rtsp://***:***@10.0.0.5:554/live?ch=1"
    assert redact_uri("rtsp://10.0.0.5/live") == "rtsp://10.0.0.5/live"
    assert redact_uri("/data/clip.mp4") == "/data/clip.mp4"
    # an unencoded '/' or '@' in the password, or a password in the query, is hidden too
    assert redact_uri("rtsp://u:a/b@c@host/x") == "rtsp://***:***@host/x"
    assert redact_uri("rtsp://host/live?user=admin&password=hunter2&ch=1") == \
        "rtsp://host/live?user=admin&password=***&ch=1"


def test_split_credentials_percent_decodes_user_and_password():
    assert split_credentials("rtsp://host/x") == ("rtsp://host/x", None, None)
    assert split_credentials("rtsp://u@host/x") == ("rtsp://host/x", "u", None)
    assert split_credentials("rtsp://u%40x:p%3Aw%2F@host:8554/x?a=1") == (
        "rtsp://host:8554/x?a=1", "u@x", "p:w/")


def test_camera_uris_parse_to_scheme_and_device():
    parsed("csi://1", scheme="csi", path="1", device=1)
    parsed("csi://front", scheme="csi", path="front")  # the CSI row says what is wrong
    parsed(" 2 ", scheme="v4l2", path="2", device=2)
    parsed("V4L2:///dev/video1", scheme="v4l2", path="/dev/video1", device="/dev/video1")


def test_an_rtsp_uri_parses_once_into_location_credentials_and_query():
    uri = "RTSP://ad%20min:p%40ss@10.0.0.5:554/live/main?ch=1&token=abc"
    fields = SourceURI(uri).fields()
    assert fields == {
        "text": uri, "shown": "RTSP://***:***@10.0.0.5:554/live/main?ch=1&token=***",
        "scheme": "rtsp", "path": "/live/main", "device": None,
        "location": "rtsp://10.0.0.5:554/live/main?ch=1&token=abc", "host": "10.0.0.5",
        "port": 554, "user": "ad min", "password": "p@ss", "query": {"ch": "1", "token": "abc"},
        "pattern": False, "extension": ""}
    assert "p@ss" not in repr(SourceURI(uri)) and "abc" not in repr(SourceURI(uri))
    no_port = SourceURI("rtsps://cam.local/x")
    assert (no_port.scheme, no_port.host, no_port.port, no_port.user) == (
        "rtsps", "cam.local", None, None)
    assert SourceURI("rtsp://cam:99999/x").port is None  # the open names the address instead


def test_paths_parse_as_files_and_wildcards_as_patterns():
    parsed("clips/Run.MP4", scheme="file", path="clips/Run.MP4", extension=".mp4")
    parsed("frames", scheme="file", path="frames")
    parsed("frames/*.png", scheme="file", path="frames/*.png", pattern=True, extension=".png")
    parsed("cam[12]/x.jpg", scheme="file", path="cam[12]/x.jpg", pattern=True,
           extension=".jpg")
    parsed(".hidden", scheme="file", path=".hidden")


@pytest.mark.parametrize("uri, shown", [
    ("rtmp://admin:s3cret@host/x", "rtmp://***:***@host/x"),
    ("http://cam/mjpg?user=admin&pwd=s3cret", "http://cam/mjpg?user=admin&pwd=***")])
def test_unknown_schemes_parse_with_their_secrets_redacted(uri, shown):
    source = SourceURI(uri)
    assert source.shown == shown and "s3cret" not in repr(source)
    assert source.scheme == uri.partition(":")[0]


@pytest.mark.parametrize("uri", ["rtsp://", "rtsp:///stream", "RTSPS://:554/x",
                                 "rtsp://admin:s3cret@/live"])
def test_an_rtsp_uri_without_a_host_is_refused_when_parsed(uri):
    with pytest.raises(NanosegError) as info:
        SourceURI(uri)
    message = str(info.value)
    assert message.startswith("RTSP URI has no host: ") and "\n" not in message
    assert "s3cret" not in message and "host[:port]/path" in message
