"""Fine-tuning: start from weights someone trained, give the network a new head, freeze what should not move.

With a few hundred images of your own, a network that already learned edges and textures on more data is
a far better start than random weights. The usual recipe:
    1. copy every trained weight into a network built for your classes (transfer_weights);
    2. the classifier head (the last layer with weights) has the wrong number of outputs: it keeps its fresh
       random initialisation;
    3. freeze the first layers (freeze), whose generic features need no change, and let the head learn
       faster than the rest (set_multipliers, like Caffe's lr_mult).
The weights come from a tinycnn checkpoint; import_weights.py makes one from torchvision's.
"""
import fnmatch
import math

from .checkpoint import CheckpointError


def head_name(model):
    """The name of the last layer that has parameters (AlexNet's fc8)."""
    return [name for name, layer in model.children() if layer.parameters()][-1]


def transfer_weights(model, entries, source, new_head=False):
    """Copy entries["param/<name>"] and entries["buffer/<name>"] into model where names and shapes agree.

    entries: a checkpoint's arrays (checkpoint.read).  source: the file, for messages.
    Only the head may differ in shape (another number of classes); it keeps its initialisation, as it does
    with new_head=True (new classes that happen to be as many as the old ones).
    -> the names of the parameters left as initialised, e.g. ["fc8.weight", "fc8.bias"].
    """
    head = head_name(model) + "."
    fresh = []
    targets = [("param/" + n, p.data) for n, p in model.named_parameters()]
    targets += [("buffer/" + n, b) for n, b in model.named_buffers()]
    missing = [key for key, _ in targets if key not in entries]
    if missing:
        raise CheckpointError(f"{source}: has no {', '.join(missing[:4])}; expected a checkpoint of the same "
                              f"architecture")
    for key, target in targets:
        in_head = key.split("/", 1)[1].startswith(head)
        if entries[key].shape == target.shape and not (in_head and new_head):
            target[...] = entries[key]
        elif in_head:
            fresh.append(key.split("/", 1)[1])
        else:
            raise CheckpointError(f"{source}: {key} has shape {entries[key].shape}, the model expects "
                                  f"{target.shape}; only the head ({head[:-1]}) may change shape")
    return fresh


def freeze(model, names, flag="freeze"):
    """Freeze the named layers of model ("conv1", "conv2", ...): their parameters stay exactly as they are.

    (BatchNorm's running statistics are buffers, not parameters: in training mode they still follow the data.)
    flag: what messages call the names (the command line's "--freeze").
    """
    layers = dict(model.children())
    with_weights = ", ".join(n for n, layer in layers.items() if layer.parameters())
    for name in names:
        if name not in layers:
            raise ValueError(f"{flag}: the model has no layer {name!r}; its layers with weights are {with_weights}")
        if not layers[name].parameters():
            raise ValueError(f"{flag}: layer {name!r} has no weights to freeze; its layers with weights are "
                             f"{with_weights}")
        layers[name].freeze()


def set_multipliers(model, spec, attribute, flag):
    """Scale the learning rate (attribute "lr_mult") or weight decay ("decay_mult") of matching parameters.

    spec: "PATTERN=VALUE,..." where PATTERN is a layer name ("fc8": all its parameters) or a shell pattern
    over parameter names ("*.bias"). Later entries win: "*.bias=2,fc8=10" gives fc8.bias 10.
    Caffe's bvlc_alexnet uses lr_mult "*.bias=2" and decay_mult "*.bias=0".
    """
    named = model.named_parameters()
    for item in filter(None, spec.split(",")):
        pattern, _, value = item.partition("=")
        try:
            value = float(value)
        except ValueError:
            value = -1.0
        if not (0 <= value < math.inf):                  # also refuses nan, which compares false to everything
            raise ValueError(f"{flag}: expected PATTERN=VALUE with a finite number >= 0, got {item!r}")
        matches = [p for n, p in named if fnmatch.fnmatchcase(n, pattern) or n.startswith(pattern + ".")]
        if not matches:
            raise ValueError(f"{flag}: {pattern!r} matches no parameter; parameters are named like "
                             f"{named[0][0]!r} and {named[1][0]!r}")
        for p in matches:
            setattr(p, attribute, value)

