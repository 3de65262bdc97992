"""How a message names an argument. The library's messages say "out='runs/x'" and "resume=True" (`argument`, the
default everywhere); the command line passes `flag` instead and the same messages say "--out runs/x" and
"--resume", so one check serves both and says what its caller can change."""

NAME_ONLY = object()         # no value given: the name alone ("another out", "another --out")


def argument(name, value=NAME_ONLY):
    """A message's name for a keyword argument: "out", or with its value "out='runs/x'"."""
    return name if value is NAME_ONLY else f"{name}={value!r}"


def flag(name, value=NAME_ONLY):
    """The command line's name for it: "--out", "--out runs/x", "--resume" (a value True is the flag alone)."""
    spelled = "--" + name.replace("_", "-")
    return spelled if value is NAME_ONLY or value is True else f"{spelled} {value}"
