"""The command line: train, evaluate and use AlexNet with tinycnn. Each command is a short function that calls
the library; the network itself is in tinycnn/models/alexnet.py.

    python alexnet.py summary  [--variant V] [--groups 1|2] [--classes K] [--input-size S]
    python alexnet.py train    [--data PATH] [--variant V] [--epochs E] [--batch-size B] [--lr LR] [--seed S]
                               [--out DIR] [--resume | --overwrite] ...
    mpiexec -n N python alexnet.py train ...   (N processes, each learning from 1/N of every batch)
    mpiexec -n 2 python alexnet.py towers [--input-size S] [--batch-size B] [--classes K]   (the paper's two GPUs)
    python alexnet.py evaluate --checkpoint FILE [--data PATH] [--ten-crop]
    python alexnet.py predict  --checkpoint FILE PATH [PATH ...] [--top K] [--csv FILE] [--ten-crop]
    python alexnet.py train    --init CHECKPOINT [--freeze conv1,conv2] [--lr-mult 'fc8=10'] --data PATH ...
    python alexnet.py pretrain [--data PATH] [--layers conv1,conv2] [--epochs E] [--out DIR] [--overwrite]
    python alexnet.py import-weights FILE [--variant torchvision] [--classes NAMES] --out CHECKPOINT
    python alexnet.py bench    [--quick]         (runs python -m benchmarks.bench in a checkout)
    python alexnet.py exercises --out DIR [--only NAMES]   (a class in a box; python -m tinycnn.grade DIR grades it)

Variants: "paper", "caffe" (bvlc_alexnet), "torchvision", "seed-keras" (the seed notes' Keras listing) and
"mini" (the paper's layer sequence for 32-64 px images).

For users and notebooks that import this file, alexnet.alexnet(...) and alexnet.load_checkpoint(path) are the
library's functions (tinycnn.models and tinycnn.runs), re-exported as DESIGN.md promises; nothing else is.
"""
import argparse
import csv
import math
import os
import signal
import subprocess
import sys
import warnings

try:                                             # Ctrl-C while numpy and numba load: one line, no traceback
    import numpy as np
    from tqdm import tqdm

    from tinycnn import checkpoint, data
    from tinycnn.data import Preprocess
    from tinycnn.distributed import EveryRankFailed, failed_on_every_rank, launched_rank, world
    from tinycnn.distributed.towers import timed_step, tower, whole_gradients
    from tinycnn.import_weights import import_weights
    from tinycnn.losses import SoftmaxCrossEntropy
    from tinycnn.models import alexnet
    from tinycnn.models.alexnet import INPUT_SIZE, PIXEL_SCALE, VARIANTS, stored_size
    from tinycnn.plots import save_confusion, save_run_pictures
    from tinycnn.pretrain import pretrain_layerwise
    from tinycnn.runs import build, load_checkpoint, load_run_data
    from tinycnn.evaluation import confusion_matrix, evaluate, predict_probs, scores
    from tinycnn.exercises import BY_NAME as EXERCISE_NAMES
    from tinycnn.setup_run import architecture, check_input_size, check_outside_data, data_description, setup_run
    from tinycnn.spelling import flag
    from tinycnn.stopping import Interrupted
    from tinycnn.train import TrainingDiverged
    from tinycnn.workspace import write_workspace
except KeyboardInterrupt:
    if __name__ != "__main__":
        raise
    print("alexnet.py: interrupted (Ctrl-C)", file=sys.stderr)
    sys.exit(130)


def number(kind, minimum=None, at_least=None):
    """An argparse type: a finite int or float, > minimum and >= at_least when given (nan and inf are refused)."""
    what = "a whole number" if kind is int else "a finite number"
    bound = "" if minimum is None else f" > {minimum}"
    bound += "" if at_least is None else f" >= {at_least}"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (not math.isfinite(value) or (minimum is not None and value <= minimum)
                or (at_least is not None and value < at_least)):
            raise argparse.ArgumentTypeError(f"expected {what}{bound}, got {text}")
        return value
    return parse


# -- commands -----------------------------------------------------------------------------------------------

def command_summary(args):
    size = args.input_size or INPUT_SIZE[args.variant]
    check_input_size(args.variant, size, flag)
    classes = args.classes or (len(data.SHAPE_CLASSES) if args.variant == "mini" else 1000)   # as train's default
    alexnet(classes, args.variant, args.groups, rng=0, input_size=size).summary((3, size, size))


def command_train(args):
    """Train on one process, or under mpiexec on several: each rank builds the same model from the same seed
    and learns from its images of every batch (tinycnn/distributed); rank 0 alone writes --out and prints."""
    run = setup_run(args.out, data=args.data, variant=args.variant, groups=args.groups, input_size=args.input_size,
                    positive_bias=args.positive_bias, seed=args.seed, train_images=args.train_images,
                    val_images=args.val_images, per_class=args.per_class, init=args.init, new_head=args.new_head,
                    freeze=args.freeze, lr_mult=args.lr_mult, decay_mult=args.decay_mult, lr=args.lr,
                    batch_size=args.batch_size, pca=not args.no_pca, patience=args.patience, resume=args.resume,
                    overwrite=args.overwrite, ranks=world(), spell=flag)
    trainer, pictures = run.trainer, []

    def draw(trainer):                           # after every epoch, so a stopped run has its pictures too
        pictures[:] = save_run_pictures(trainer.history, trainer.model["conv1"].weight.data, args.out)

    run.fit(args.epochs, after_epoch=draw)
    if trainer.ranks.rank != 0:                  # rank 0 holds the files (and the same model)
        return
    best, _ = load_checkpoint(os.path.join(args.out, "best.npz"))
    final = evaluate(best, trainer.val, trainer.preprocess, trainer.input_size, ten_crop=args.ten_crop)
    crops = "10-crop" if args.ten_crop else "centre-crop"
    top5 = f", top-5 {final['top5']:.3f}" if len(trainer.train.classes) > 5 else ""
    print(f"best checkpoint: val top-1 {final['top1']:.3f}{top5} ({crops}), saved in {args.out}/best.npz")
    for picture in pictures:
        print(f"wrote {picture}")


def command_towers(args):
    """mpiexec -n 2: the paper's groups=2 AlexNet as its two GPU towers, one rank each; one forward and backward
    pass on random images, each rank's layers with what they hold, compute and send; rank 0 then checks the
    gradients against one process running the whole groups=2 model."""
    ranks = world()
    if ranks.size != 2:
        raise EveryRankFailed(f"the paper's two GPUs are two processes: mpiexec -n 2 python alexnet.py towers "
                              f"(got {ranks.size})")
    size, rng = args.input_size, np.random.default_rng(args.seed)
    model = alexnet(args.classes, "paper", groups=2, rng=args.seed, input_size=size, positive_bias=0.1)
    x = rng.standard_normal((args.batch_size, 3, size, size)).astype(np.float32) * 50
    labels = rng.integers(0, args.classes, args.batch_size)
    towers = tower(model, ranks)
    _, loss, rows = timed_step(towers, x, labels)
    grads = whole_gradients(towers, ranks)
    reports = ranks.comm.gather(rows, root=0)
    if ranks.rank != 0:
        return
    print(f"the paper's AlexNet (groups=2, {args.classes} classes, {size}x{size}) as two towers, batch "
          f"{args.batch_size}: loss {loss:.4f}")
    for rank, rows in enumerate(reports):
        print(f"\nrank {rank} (tower {'ab'[rank]}): {sum(r['params'] for r in rows):,} parameters, "
              f"{sum(r['sent'] for r in rows) / args.batch_size / 1e3:.1f} KB sent per image")
        print(f"{'layer':<10} {'kind':<18} {'output (this rank)':<20} {'params':>10} {'ms':>8} {'KB sent/image':>14}")
        for r in rows:
            sent = f"{r['sent'] / args.batch_size / 1e3:.1f}" if r["sent"] else ""
            print(f"{r['name']:<10} {r['kind']:<18} {str(r['output_shape']):<20} {r['params']:>10,} {r['ms']:>8.1f} "
                  f"{sent:>14}")
    one = SoftmaxCrossEntropy()
    one.forward(model.forward(x, training=True), labels)
    model.skip_input_gradient()
    model.backward(one.backward())
    worst = max(float(np.abs(grads[name] - p.grad).max() / np.abs(p.grad).max())
                for name, p in model.named_parameters())
    print(f"\none process running the whole groups=2 model gets the same gradients, to {worst:.1e} of each one's "
          f"largest (float32)")


def command_pretrain(args):
    checkpoint.check_writable_folder(args.out, "--out", ["pretrained.npz"])
    check_outside_data(args.out, args.data, flag)
    path = os.path.join(args.out, "pretrained.npz")
    if os.path.exists(path) and not args.overwrite:
        raise ValueError(f"--out {args.out}: already holds pretrained.npz; pre-train into another --out (or "
                         f"--overwrite to replace it)")
    unknown = [name for name in args.layers if name not in ("conv1", "conv2", "conv3", "conv4", "conv5")]
    if unknown or not args.layers:                # before any data is loaded
        raise ValueError(f"--layers: expected conv layers among conv1..conv5, got {','.join(args.layers) or 'none'}")
    data_info = data_description(args.data, args.seed, args.train_images, args.val_images, per_class=None)
    config = architecture(args.variant, args.groups, args.input_size, args.positive_bias)
    variant, size = config["variant"], config["input_size"]
    check_input_size(variant, size, flag)
    train, _ = load_run_data(data_info, stored_size(size))   # the labels are not used
    config["num_classes"] = len(train.classes)
    rng = np.random.default_rng([args.seed, 3])
    model = build(config, rng=rng)
    preprocess = Preprocess.fit(train.images, PIXEL_SCALE[variant])
    print(f"pre-training {', '.join(args.layers)} of {variant} AlexNet as auto-encoders on {len(train)} unlabeled "
          f"images at {size}x{size}")
    history = pretrain_layerwise(model, args.layers, train.images, preprocess, size, rng, epochs=args.epochs,
                                 lr=args.lr, batch_size=args.batch_size)
    meta = dict(config=config, classes=train.classes, data=data_info, epoch=0, history=[], pretrain=history)
    checkpoint.save(path, model, meta, arrays=preprocess.state())
    print(f"saved {path}; fine-tune it with: python alexnet.py train --init {path} --data ...")


def command_import_weights(args):
    checkpoint.check_writable_file(args.out, "--out")
    for flag, path in (("FILE", args.file), ("--classes", args.classes)):
        if path and os.path.realpath(path) == os.path.realpath(args.out):
            raise ValueError(f"--out {args.out}: is also {flag} of this command; expected a new file name")
    if os.path.exists(args.out) and not args.overwrite:
        raise ValueError(f"--out {args.out}: already exists; write another --out (or --overwrite to replace it)")
    check_input_size(args.variant, args.input_size or INPUT_SIZE[args.variant], flag)
    class_names = None
    if args.classes:
        try:
            with open(args.classes, encoding="utf-8") as f:
                class_names = [line.strip() for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"--classes {args.classes}: cannot be read ({getattr(error, 'strerror', None) or error});"
                             f" expected a text file with one class name per line") from None
    model, meta, preprocess = import_weights(args.file, args.variant, class_names, args.input_size)
    checkpoint.save(args.out, model, meta, arrays=preprocess.state())
    print(f"wrote {args.out}: {meta['config']['variant']} AlexNet, {meta['config']['num_classes']} classes, "
          f"{sum(p.size for p in model.parameters()):,} parameters")


def progress(total, what):
    """A progress bar over `total` images on stderr, as train's (none when stderr is not a terminal)."""
    return tqdm(total=total, desc=what, unit="image", leave=False, mininterval=0.5, disable=None)


def by_name(images, classes, path):
    """An ImageSet relabelled to a checkpoint's class indices, matching class names; refuses unknown names."""
    unknown = [name for name in images.classes if name not in classes]
    if unknown:
        raise ValueError(f"{path}: classes {unknown[:6]} are not among the checkpoint's {len(classes)} classes "
                         f"{classes[:6]}{' ...' if len(classes) > 6 else ''}")
    index = np.array([classes.index(name) for name in images.classes], np.int64)
    return data.ImageSet(images.images, index[images.labels], classes)


def trained_on(meta, path):
    """Whether `path` is the --data this checkpoint was trained on."""
    own = (meta.get("data") or {}).get("path")
    return own is not None and os.path.realpath(own) == os.path.realpath(path)


def confusion_by_class(probs, labels, classes):
    """Where the images of each class present went: -> (counts (present, columns), row names, column names).

    Columns are the classes present in the data, in the same order as the rows (so the diagonal is right), then
    "(other)" for predictions of the checkpoint's other classes, if any were made.
    """
    present = np.unique(labels)
    matrix = confusion_matrix(probs.argmax(axis=1), labels, len(classes))[present]
    other = np.delete(matrix, present, axis=1).sum(axis=1)
    counts = np.column_stack([matrix[:, present]] + ([other] if other.any() else []))
    rows = [classes[i] for i in present]
    return counts, rows, rows + (["(other)"] if other.any() else [])


def per_class_lines(counts, rows, columns, most_columns=20):
    """A text table: each true class, its images, its top-1 accuracy and (for up to most_columns) its row of the
    confusion matrix."""
    width, cells = max(map(len, rows + ["class"])), [max(len(c), 4) for c in columns]
    show, lead = len(columns) <= most_columns, "   predicted as: "
    lines = [f"{'class':<{width}}  images  top-1" + (lead + " ".join(f"{c:>{w}}" for c, w in zip(columns, cells))
                                                     if show else "")]
    for r, name in enumerate(rows):
        line = f"{name:<{width}}  {counts[r].sum():>6}  {counts[r, r] / counts[r].sum():.3f}"
        lines.append(line + (" " * len(lead) + " ".join(f"{n:>{w}}" for n, w in zip(counts[r], cells)) if show
                             else ""))
    if not show:
        lines.append(f"(the confusion matrix has {len(columns)} columns, too many to print)")
    return lines


def command_evaluate(args):
    model, meta = load_checkpoint(args.checkpoint)
    size, classes = meta["config"]["input_size"], meta["classes"]
    if args.data is None and meta.get("data") is None:
        raise ValueError(f"{args.checkpoint}: was not trained here, so it has no validation set; pass --data")
    if args.data is None:                        # the run's own validation set
        _, images = load_run_data(meta["data"], stored_size(size))
    else:
        train, val = data.load(args.data, stored_size(size), val_fraction=0.0, min_classes=1)   # some classes
        images = by_name(train if len(val) == 0 else val, classes, args.data)   # a CIFAR folder: its test batch
        if len(val) == 0 and trained_on(meta, args.data):
            warnings.warn(f"{args.data}: is the data {args.checkpoint} was trained on, so these images include the "
                          f"ones it learned from and the accuracy is optimistic (without --data, evaluate uses the "
                          f"images the run held out)")
    probs = []
    with progress(len(images), "evaluating") as bar:
        for start in range(0, len(images), 100):
            probs.append(predict_probs(model, images.images[start:start + 100], meta["preprocess"], size,
                                       ten_crop=args.ten_crop))
            bar.update(len(probs[-1]))
    probs = np.concatenate(probs)
    result = scores(probs, images.labels)
    top5 = f", top-5 {result['top5']:.3f}" if len(classes) > 5 else ""    # with 5 classes or fewer it is always 1
    print(f"{len(images)} images: loss {result['loss']:.4f}, top-1 {result['top1']:.3f}{top5}"
          f" ({'10-crop' if args.ten_crop else 'centre crop'})")
    counts, rows, columns = confusion_by_class(probs, images.labels, classes)
    if len(rows) < len(classes):
        print(f"evaluated on {len(rows)} of the checkpoint's {len(classes)} classes")
    print("\n".join(per_class_lines(counts, rows, columns)))
    data_name = "" if args.data is None else "_" + os.path.splitext(os.path.basename(os.path.normpath(args.data)))[0]
    picture = os.path.splitext(args.checkpoint)[0] + f"_confusion{data_name}.png"     # one per data set
    try:
        checkpoint.check_writable_file(picture, "confusion matrix")
    except ValueError as error:
        warnings.warn(f"{error}; no picture written")
        return
    title = f"{os.path.basename(args.checkpoint)} on {args.data or 'its validation set'}"
    if save_confusion(counts, rows, columns, picture, title):
        print(f"wrote {picture}")


CSV_HEADER = "path,class_1,probability_1"       # how every CSV that predict writes begins


def check_csv(args):
    """predict --csv, before anything is read: a new file, or a CSV predict wrote (it is replaced); never a file
    the command reads, nor any other file (`--csv holiday.jpg beach.jpg` took a photo for the CSV's name)."""
    checkpoint.check_writable_file(args.csv, "--csv")
    for flag, path in [("--checkpoint", args.checkpoint)] + [("an image PATH", path) for path in args.images]:
        if os.path.realpath(path) == os.path.realpath(args.csv):
            raise ValueError(f"--csv {args.csv}: is also {flag} of this command; expected a new file name for the "
                             f"CSV")
    if os.path.isfile(args.csv):
        with open(args.csv, "rb") as f:
            if not f.read(len(CSV_HEADER)) == CSV_HEADER.encode():
                raise ValueError(f"--csv {args.csv}: already exists and is not a CSV that predict wrote; expected "
                                 f"a new file name (or a CSV of predict's, which is replaced)")


def command_predict(args):
    if args.csv:
        check_csv(args)
    model, meta = load_checkpoint(args.checkpoint)
    size, classes = meta["config"]["input_size"], meta["classes"]
    files, failed = [], []
    for path in args.images:                     # folders are searched for image files, recursively
        found = data.image_files(path) if os.path.isdir(path) else [path]
        if not found:
            warnings.warn(f"{path}: holds no image files (expected names ending in "
                          f"{', '.join(data.images.IMAGE_SUFFIXES)})")
            failed.append(path)
        files += found
    top, rows, bar = min(args.top, len(classes)), [], progress(len(files), "predicting")
    for start in range(0, len(files), 64):       # a few images at a time: memory stays small for any count
        names, pixels = [], []
        for path in files[start:start + 64]:
            try:
                pixels.append(data.read_image(path, stored_size(size)))
                names.append(path)
            except ValueError as error:
                warnings.warn(f"{error}; skipped")
                failed.append(path)
        bar.update(len(files[start:start + 64]))
        if not names:
            continue
        for path, probs in zip(names, predict_probs(model, np.stack(pixels), meta["preprocess"], size,
                                                    ten_crop=args.ten_crop)):
            best = np.argsort(-probs, kind="stable")[:top]
            bar.write(f"{path}: " + ", ".join(f"{classes[i]} {probs[i]:.3f}" for i in best), file=sys.stdout)
            rows.append([path] + [value for i in best for value in (classes[i], f"{probs[i]:.6f}")])
    bar.close()
    if args.csv:
        with checkpoint.atomic_open(args.csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["path"] + [f"{key}_{k}" for k in range(1, top + 1) for key in ("class", "probability")])
            writer.writerows(rows)
        print(f"wrote {args.csv}")
    if any(os.path.isdir(path) for path in args.images):
        print(f"{len(rows)} images predicted (a folder is searched with its sub-folders, as train reads a class "
              f"folder)")
    if failed:
        raise ValueError(f"{len(failed)} of {len(rows) + len(failed)} paths could not be read (named above)"
                         + ("; the others were predicted" if rows else ""))


def command_bench(args):
    """benchmarks/ is not part of the library: it runs in its own process, from the checkout this file is in."""
    root = os.path.dirname(os.path.abspath(__file__))
    if not os.path.isfile(os.path.join(root, "benchmarks", "bench.py")):
        raise ValueError(f"benchmarks/ not found beside {os.path.basename(__file__)}; run it from a checkout of "
                         f"tinycnn")
    return subprocess.run([sys.executable, "-m", "benchmarks.bench"] + (["--quick"] if args.quick else []),
                          cwd=root).returncode


def command_exercises(args):
    """A student's workspace: the library with the chosen exercises cut out (tinycnn/workspace.py)."""
    exercises = write_workspace(args.out, args.only, spell=flag)
    names = ", ".join(e.name for e in exercises)
    what = "1 exercise" if len(exercises) == 1 else f"{len(exercises)} exercises"
    print(f"wrote {args.out}: tinycnn with {what} to write ({names}); {args.out}/README.md says "
          f"where to start, python -m tinycnn.grade {args.out} checks them")


class OneLineParser(argparse.ArgumentParser):
    """Bad flags print one line naming the flag, what was wrong and what was expected (no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n" if launched_rank() == 0 else None)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help pages: the description and example as written, and each flag's default unless its help gives it."""

    def _get_help_string(self, action):
        shown = action.default not in (None, False, "", argparse.SUPPRESS) and action.option_strings
        return action.help + (" (default: %(default)s)" if shown and "default" not in action.help else "")


def parser():
    positive_int, positive_float = number(int, minimum=0), number(float, minimum=0)
    seed = number(int, at_least=0)
    main_parser = OneLineParser(prog="alexnet.py", description="AlexNet with tinycnn", formatter_class=HelpFormatter)
    commands = main_parser.add_subparsers(dest="command", required=True)

    def command(name, what, example):
        return commands.add_parser(name, help=what, description=what[0].upper() + what[1:] + ".",
                                   epilog=f"example:\n  {example}", formatter_class=HelpFormatter)

    variant_help = "which AlexNet: " + ", ".join(VARIANTS) + " (see ALEXNET.md)"
    groups_help = "2: the paper's two GPUs (conv2, conv4, conv5 see half the maps); default: the variant's (2: caffe)"
    size_help = "crop size in pixels (default: the variant's own: 227, 224, or 32 for mini)"

    summary = command("summary", "print the layer table: windows, output shapes, parameters, MACs",
                      "python alexnet.py summary --variant paper --groups 2")
    summary.add_argument("--variant", default="mini", choices=VARIANTS, help=variant_help)
    summary.add_argument("--groups", type=int, default=None, choices=(1, 2), help=groups_help)
    summary.add_argument("--classes", type=positive_int, default=None,
                         help="default: 6 for mini (the built-in shapes, as train), 1000 otherwise")
    summary.add_argument("--input-size", type=positive_int, default=None, help=size_help)

    train = command("train", "train on the built-in shapes or --data (the paper's recipe)",
                    "python alexnet.py train --data photos --epochs 10 --out runs/photos")
    train.add_argument("--data", help="a folder of class folders, a CIFAR-10 batches folder, or an .npz "
                                      "(default: the built-in shapes)")
    train.add_argument("--variant", default=None, choices=VARIANTS, help=variant_help + "; default: mini, or --init's")
    train.add_argument("--groups", type=int, default=None, choices=(1, 2), help=groups_help)
    train.add_argument("--input-size", type=positive_int, default=None, help=size_help)
    train.add_argument("--epochs", type=positive_int, default=7, help="epochs in all (counting those before --resume)")
    train.add_argument("--batch-size", type=positive_int, default=None,
                       help="default: 32 for mini, the paper's 128 otherwise")
    train.add_argument("--lr", type=positive_float, default=0.01,
                       help="initial learning rate (the paper's)")
    train.add_argument("--positive-bias", type=number(float), default=1.0,
                       help="bias of conv2/4/5 and fc6/7 in the paper variant (Caffe: 0.1)")
    train.add_argument("--patience", type=positive_int, default=2,
                       help="epochs without a better validation error before the learning rate drops 10x")
    train.add_argument("--seed", type=seed, default=0, help="draws the weights, the split and the augmentation")
    train.add_argument("--out", default="runs/alexnet", help="folder for checkpoints, history and pictures")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last.npz")
    train.add_argument("--overwrite", action="store_true", help="replace the run in --out with a new one (the old "
                       "one is kept until the new one has written its first checkpoint)")
    train.add_argument("--ten-crop", action="store_true", help="evaluate the best model with 10 crops at the end")
    train.add_argument("--no-pca", action="store_true", help="turn PCA colour augmentation off")
    train.add_argument("--train-images", type=positive_int, default=7000,
                       help="built-in data: training images")
    train.add_argument("--val-images", type=positive_int, default=1000,
                       help="built-in data: validation images")
    train.add_argument("--per-class", type=positive_int, default=None,
                       help="--data: train on at most this many images per class")
    train.add_argument("--init", metavar="CHECKPOINT", help="start from these weights (fine-tuning); the head "
                       "is replaced when the number of classes differs")
    train.add_argument("--new-head", action="store_true", help="with --init: start the head afresh even when "
                       "the number of classes is the same (new classes)")
    train.add_argument("--freeze", default="", metavar="LAYERS", help="layers to keep fixed, e.g. conv1,conv2")
    train.add_argument("--lr-mult", default="", metavar="SPEC",
                       help="learning-rate multipliers, e.g. 'fc8=10,*.bias=2' (Caffe's lr_mult)")
    train.add_argument("--decay-mult", default="", metavar="SPEC",
                       help="weight-decay multipliers, e.g. '*.bias=0'")

    pretrain = command("pretrain", "layer-wise auto-encoder pre-training on unlabeled images",
                       "python alexnet.py pretrain --data photos --layers conv1,conv2 --out runs/pre")
    pretrain.add_argument("--data", help="images as for train (labels are ignored); default: the built-in shapes")
    pretrain.add_argument("--variant", default="mini", choices=VARIANTS, help=variant_help)
    pretrain.add_argument("--groups", type=int, default=None, choices=(1, 2), help=groups_help)
    pretrain.add_argument("--input-size", type=positive_int, default=None, help=size_help)
    pretrain.add_argument("--positive-bias", type=number(float), default=1.0,
                          help="bias of conv2/4/5 and fc6/7 in the paper variant (Caffe: 0.1)")
    pretrain.add_argument("--layers", type=lambda text: [n for n in text.split(",") if n], default=["conv1", "conv2"],
                          help="conv layers to pre-train, in order (default: conv1,conv2)")
    pretrain.add_argument("--epochs", type=positive_int, default=2, help="epochs per layer")
    pretrain.add_argument("--lr", type=positive_float, default=0.01, help="learning rate")
    pretrain.add_argument("--batch-size", type=positive_int, default=32, help="images per step")
    pretrain.add_argument("--seed", type=seed, default=0, help="draws the weights and the order of the images")
    pretrain.add_argument("--train-images", type=positive_int, default=7000, help="built-in data: images")
    pretrain.add_argument("--val-images", type=positive_int, default=1000,
                          help="built-in data: images held out (as train holds them out)")
    pretrain.add_argument("--out", default="runs/pretrain", help="folder for pretrained.npz")
    pretrain.add_argument("--overwrite", action="store_true", help="replace pretrained.npz in --out")

    import_ = command("import-weights", "turn a state_dict (.pth or .npz) into a checkpoint",
                      "python alexnet.py import-weights alexnet-owt.pth --classes names.txt --out imagenet.npz")
    import_.add_argument("file", help="torchvision AlexNet state_dict (.pth needs torch; or an .npz with the same "
                                      "keys), or an .npz with tinycnn's names (conv1.weight, ...)")
    import_.add_argument("--variant", default="torchvision", choices=VARIANTS, help=variant_help)
    import_.add_argument("--input-size", type=positive_int, default=None, help=size_help)
    import_.add_argument("--classes", help="a text file with one class name per line (default: 0, 1, ...)")
    import_.add_argument("--out", required=True, help="the checkpoint to write (.npz)")
    import_.add_argument("--overwrite", action="store_true", help="replace the checkpoint at --out")

    evaluate_ = command("evaluate", "top-1/top-5, per-class accuracy and a confusion matrix",
                        "python alexnet.py evaluate --checkpoint runs/alexnet/best.npz --data test-photos")
    evaluate_.add_argument("--checkpoint", required=True, help="a checkpoint of train, pretrain or import-weights")
    evaluate_.add_argument("--data", help="images to evaluate on, matched to the checkpoint's classes by name "
                                          "(default: the run's validation set)")
    evaluate_.add_argument("--ten-crop", action="store_true", help="average 10 crops of each image (the paper's)")

    predict = command("predict", "the most likely classes of images",
                      "python alexnet.py predict --checkpoint runs/alexnet/best.npz holiday.jpg photos --csv top.csv")
    predict.add_argument("--checkpoint", required=True, help="a checkpoint of train, pretrain or import-weights")
    predict.add_argument("images", nargs="+", metavar="PATH", help="image files, or folders searched for them "
                                                                   "with their sub-folders")
    predict.add_argument("--top", type=positive_int, default=5, metavar="K", help="classes to show")
    predict.add_argument("--csv", metavar="FILE", help="also write the results to this CSV file (a new file, or a "
                                                       "CSV predict wrote)")
    predict.add_argument("--ten-crop", action="store_true", help="average 10 crops of each image (the paper's)")

    towers = command("towers", "under mpiexec -n 2: the paper's two GPUs as two processes, one training step, what "
                     "each computes and sends", "mpiexec -n 2 python alexnet.py towers --batch-size 8")
    towers.add_argument("--input-size", type=positive_int, default=227, help="image side in pixels")
    towers.add_argument("--batch-size", type=positive_int, default=8, help="random images in the step")
    towers.add_argument("--classes", type=positive_int, default=1000, help="outputs of fc8")
    towers.add_argument("--seed", type=seed, default=0, help="draws the weights and the images")

    bench = command("bench", "speed and memory against OpenBLAS and PyTorch (benchmarks/)",
                    "python alexnet.py bench --quick")
    bench.add_argument("--quick", action="store_true", help="fewer repeats, batch 16 only")

    exercises = command("exercises", "write a student workspace: tinycnn with chosen parts left to write, graded by "
                        "python -m tinycnn.grade", "python alexnet.py exercises --out class/ws --only relu_backward,"
                        "maxpool_backward")
    exercises.add_argument("--out", required=True, help="a new (or empty) folder for the workspace")
    exercises.add_argument("--only", type=lambda text: [n.strip() for n in text.split(",") if n.strip()], default=None,
                           metavar="NAMES", help="exercises to hand out, comma-separated (default: all of "
                           + ", ".join(EXERCISE_NAMES) + ")")
    return main_parser


COMMANDS = {"summary": command_summary, "train": command_train, "evaluate": command_evaluate,
            "predict": command_predict, "pretrain": command_pretrain, "import-weights": command_import_weights,
            "towers": command_towers, "bench": command_bench, "exercises": command_exercises}


class Terminated(Exception):
    """SIGTERM outside a training step (during one, training saves a checkpoint first and raises Interrupted).
    mpiexec passes the signal to every rank, so rank 0 alone says it."""
    every_rank = True


def stop_on_sigterm(signum, frame):
    raise Terminated("terminated (SIGTERM)")


def main(argv=None):
    """Run one command. -> the exit code: 0, 2 for bad input (one line on stderr), 130 for Ctrl-C, 143 for
    SIGTERM; bench passes on the benchmark's own. Warnings print as plain lines on stderr, not
    in Python's warning format. Under mpiexec (train and towers), rank 0 alone prints."""
    prog = "alexnet.py"
    try:
        args = parser().parse_args(argv)
        prog = f"alexnet.py {args.command}"
        ranks = world()
        if ranks.size > 1 and args.command not in ("train", "towers"):
            raise EveryRankFailed(f"runs on one process; mpiexec -n N is for train and towers (got {ranks.size} "
                                  f"ranks)")
        with warnings.catch_warnings():              # Python's filters, seen afresh by each call of main
            warnings.showwarning = lambda message, *_, **__: print(f"{prog}: warning: {message}", file=sys.stderr)
            if ranks.rank != 0:                      # rank 0 says it for every rank
                warnings.showwarning = lambda *_, **__: None
            code = COMMANDS[args.command](args)
    except (ValueError, OSError, TrainingDiverged, EveryRankFailed) as error:
        return tell(prog, error, 2)
    except Interrupted as stopped:
        return tell(prog, stopped, 128 + stopped.signum)
    except KeyboardInterrupt as error:              # Ctrl-C outside a training step; files are written whole
        return tell(prog, "interrupted (Ctrl-C)", 130, error)
    except Terminated as error:
        return tell(prog, error, 143)
    except Exception as error:
        if world().size == 1:
            raise
        return tell(prog, f"{type(error).__name__}: {error}", 1, error)
    return code or 0


def tell(prog, error, code, raised=None):
    """Say why a command stopped, in one line on stderr, and return its exit code.

    Under mpiexec: when every rank stopped for the same reason (a mistake each rank found, a signal, a diverged
    loss), rank 0 alone says it. A rank that failed alone says which rank it is and stops the others (MPI
    Abort), which would otherwise wait for it forever.
    """
    ranks = world()
    raised = error if raised is None else raised
    if ranks.size == 1 or failed_on_every_rank(raised):
        if ranks.rank == 0:
            print(f"{prog}: {error}", file=sys.stderr)
        return code
    print(f"{prog}: rank {ranks.rank} of {ranks.size} failed: {error}; stopping every rank", file=sys.stderr,
          flush=True)
    ranks.abort(code)
    return code


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even where it started ignored (a script's `&`)
    signal.signal(signal.SIGTERM, stop_on_sigterm)     # as Ctrl-C: one line, not a silent death
    sys.exit(main())
