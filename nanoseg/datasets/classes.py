"""Which classes to learn: names matched loosely, aliases, and name=id pairs for id masks."""
import logging

from nanoseg.contract import IGNORE_ID
from nanoseg.datasets.masks import BinaryMaskDecoder, IdMaskDecoder
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

DEFAULT_BINARY_CLASS = "object"


def class_list(classes):
    """``classes`` as a list of strings: accepts None, a list, or 'a,b' / 'a b'."""
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = classes.replace(",", " ").split()
    result = [str(c).strip() for c in classes if str(c).strip()]
    return result or None


def class_key(name):
    """How class names compare: no case, spaces, '_' or '-' ('Sign Symbol' = 'signsymbol')."""
    return "".join(ch for ch in str(name).lower() if ch not in " _-")


def select_classes(requested, available, what, aliases=None):
    """Indices into ``available`` of the ``requested`` names, in order.

    Names match without case, spaces, '_' and '-'; ``aliases`` maps other spellings (keys
    compared the same way) to one available name each.
    """
    keys = [class_key(name) for name in available]
    alias_keys = dict((class_key(k), v) for k, v in (aliases or {}).items())
    chosen = []
    for name in requested:
        key = class_key(name)
        if key not in keys and key in alias_keys:
            LOG.info("class %r is the %s class %r", name, what, alias_keys[key])
            key = class_key(alias_keys[key])
        if key not in keys:
            raise NanosegError("class {!r} is not in the {} dataset; available classes: "
                               "{}".format(name, what, ", ".join(available)))
        index = keys.index(key)
        if index in chosen:
            raise NanosegError("class {!r} is selected twice (as {!r}); list each class "
                               "once".format(name, available[index]))
        chosen.append(index)
    return chosen


def parse_id_classes(classes):
    """['nail=1', 'skin=2'] -> (names, ids) for flat masks that store class ids."""
    names, ids = [], []
    for entry in classes:
        name, _, value = entry.partition("=")
        try:
            source_id = int(value)
        except ValueError:
            raise NanosegError("class {!r} must be name=id with an integer id 1..254, e.g. "
                               "nail=1".format(entry))
        if not name.strip() or not 1 <= source_id <= 254:
            raise NanosegError("class {!r} must be name=id with an id in 1..254 (0 is "
                               "background, 255 ignore)".format(entry))
        if source_id in ids:
            raise NanosegError("class id {} is given twice in {}".format(source_id, classes))
        names.append(name.strip())
        ids.append(source_id)
    check_unique_names(names, " ".join(classes))
    return names, ids


def check_unique_names(names, given):
    """A one-line error naming the first class name that repeats another, or 'background'
    (label 0's name), compared like :func:`class_key`: the metrics are keyed by name."""
    seen = {class_key("background"): "background (label 0)"}
    for name in names:
        key = class_key(name)
        if key in seen:
            raise NanosegError("class name {!r} repeats {} in {}: give each class its own "
                               "name".format(name, seen[key], given))
        seen[key] = repr(name)


def binary_or_id_classes(classes, mask_invert=False):
    """Class names, source ids and the mask decoder of layouts whose masks are binary or
    hold the ids given as name=id pairs (flat, csv)."""
    classes = class_list(classes)
    if classes and any("=" in c for c in classes):
        if mask_invert:
            raise NanosegError("mask_invert is for binary masks; masks of class ids (classes "
                               "{}) name their ids instead: drop --mask-invert".format(classes))
        if not all("=" in c for c in classes):
            raise NanosegError("classes {} mix plain names and name=id pairs: give every class "
                               "as name=id for masks of class ids".format(classes))
        names, ids = parse_id_classes(classes)
        mapping = {0: 0, IGNORE_ID: IGNORE_ID}
        mapping.update((source_id, i + 1) for i, source_id in enumerate(ids))
        fix = "add every id the masks use to classes as name=id (0 is background, 255 ignore)"
        return names, ids, IdMaskDecoder(mapping, "listed", fix)
    if classes and len(classes) > 1:
        raise NanosegError("classes {}: binary masks have one foreground class; for masks of "
                           "class ids give name=id pairs, e.g. nail=1 skin=2".format(classes))
    names = classes or [DEFAULT_BINARY_CLASS]
    return names, [1], BinaryMaskDecoder(mask_invert)
