"""Whether a checkpoint can be resumed by the run at hand: written for the same model, the same data and the same
classes. The checks read the checkpoint's description alone (checkpoint.read(meta_only=True)), before any data is
loaded or any weight is read."""
import os

from . import checkpoint
from .spelling import argument


def data_differences(stored, given):
    """The keys of two data descriptions (meta["data"]) that give different images -> list of keys."""
    relevant = ("path", "seed", "per_class") if given["path"] else ("path", "seed", "train_images", "val_images")

    def same(key):
        a, b = stored.get(key), given.get(key)
        if key == "path" and a is not None and b is not None:
            return os.path.realpath(a) == os.path.realpath(b)
        return a == b

    return [key for key in relevant if not same(key)]


def describe_data(info, keys, spell=argument):
    """The arguments that chose a run's images, e.g. "data='/photos', seed=0" (or "--data /photos, --seed 0")."""
    return ", ".join(f"no {spell('data')} (the built-in shapes)" if key == "path" and info.get(key) is None
                     else spell("data" if key == "path" else key, info.get(key)) for key in keys)


def check_resumable(path, config, data_info=None, classes=None, spell=argument):
    """Raise CheckpointError unless the checkpoint at path was written for this config (the keys given), and,
    when given, for this data (data_info: the data and the arguments that choose its images) and these class
    names. spell: how messages name the arguments (tinycnn/spelling.py).
    -> the checkpoint's meta."""
    meta = checkpoint.read(path, meta_only=True)[1]
    written_for = meta.get("config") or {}
    differ = [key for key in config if written_for.get(key) != config[key]]

    def refuse_config(keys):
        raise checkpoint.CheckpointError(
            f"{path}: was written for " + ", ".join(f"{k}={written_for.get(k)!r}" for k in keys)
            + "; this run asks for " + ", ".join(f"{k}={config[k]!r}" for k in keys))

    if set(differ) - {"num_classes"}:            # other classes are told apart by name below
        refuse_config(differ)
    start_again = f"resume with the run's own data, or start a new run with another {spell('out')}"
    changed = data_differences(meta["data"], data_info) if data_info and meta.get("data") else []
    if changed:
        raise checkpoint.CheckpointError(f"{path}: the run was trained with "
                                         f"{describe_data(meta['data'], changed, spell)}; this run asks for "
                                         f"{describe_data(data_info, changed, spell)}; {start_again}")
    if classes is not None and meta.get("classes") != list(classes):
        raise checkpoint.CheckpointError(f"{path}: the run was trained on classes {meta.get('classes')}, the data "
                                         f"now has {list(classes)}; {start_again}")
    if differ:
        refuse_config(differ)
    return meta
