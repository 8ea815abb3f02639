"""--resume: the run must train the same model, on the same data, as the checkpoint."""
import logging
import os

from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)


def check_resumable(state, contract, args):
    """A resumed run must train the same model, on the same labels, it checkpointed."""
    saved = state.get("contract")
    data = {"root": os.path.abspath(args.data), "layout": args.layout, "classes": args.classes}
    if saved is None:
        state["contract"] = contract.to_dict()
        state["mask_invert"] = bool(args.mask_invert)
        state["data"] = data
        return
    _check_resumed_data(state.get("data"), data)
    saved_invert = bool(state.get("mask_invert", False))
    if saved_invert != bool(args.mask_invert):
        raise NanosegError("--resume: the checkpoint was trained {} --mask-invert: resume {} "
                           "it or pass --overwrite".format(
                               "with" if saved_invert else "without",
                               "with" if saved_invert else "without"))
    state["mask_invert"] = saved_invert
    from nanoseg.contract import Contract
    previous = Contract.from_dict(saved, source="the resume state")
    if previous.backbone != contract.backbone:
        raise NanosegError("--resume: the checkpoint is a {} model, --backbone is {}: resume "
                           "with the same arguments or pass --overwrite".format(
                               previous.backbone, contract.backbone))
    if previous.size != contract.size:
        raise NanosegError("--resume: the checkpoint was trained at --size {} {}, not {} {}: "
                           "resume with --size {} {} or pass --overwrite".format(
                               *(previous.size + contract.size + previous.size)))
    if previous.class_names != contract.class_names:
        raise NanosegError("--resume: the checkpoint learned the classes {}, not {}: resume "
                           "with --classes {} or pass --overwrite".format(
                               previous.class_names[1:], contract.class_names[1:],
                               " ".join(_flag_values(state.get("data"), "classes",
                                                     previous.class_names[1:]))))
    previous.check_compatible(contract, "resumed run")
    if state["epochs_done"] >= args.epochs:
        LOG.warning("--resume: %d epochs are already done and --epochs is %d: no training, "
                    "the bundle is rewritten from the checkpoints", state["epochs_done"],
                    args.epochs)


def _check_resumed_data(saved, data):
    """The same dataset as the checkpoint (states written before this was recorded pass)."""
    if not saved:
        return
    for key, flag in (("root", "--data"), ("layout", "--layout"), ("classes", "--classes")):
        if saved.get(key) != data[key]:
            raise NanosegError("--resume: the checkpoint was trained {}, not {}: resume {} or "
                               "pass --overwrite to start over".format(
                                   _shown(flag, saved.get(key)), _shown(flag, data[key]),
                                   _shown(flag, saved.get(key))))


def _shown(flag, value):
    """A flag as typed on the command line ("with --data /x", "without --classes")."""
    if value is None:
        return "without " + flag
    return "with {} {}".format(flag, " ".join(str(v) for v in value)
                               if isinstance(value, list) else value)


def _flag_values(saved, key, default):
    values = (saved or {}).get(key)
    return [str(v) for v in values] if values else [str(v) for v in default]

