"""Issue 25, a class in a box: exercise regions marked in the library's own source, a student's workspace with
them cut out (python alexnet.py exercises), and the grader that runs the library's checks on the student's copy
(python -m tinycnn.grade). Real workspaces are written here and graded in fresh processes, as a class would."""
import contextlib
import glob
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

import alexnet
from tinycnn import grade, regions
from tinycnn.exercises import BY_NAME, EXERCISES, library_regions
from tinycnn.regions import MarkerError, cut, find_regions, paste
from tinycnn.workspace import write_workspace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--train-images", "24", "--val-images", "12", "--input-size", "16", "--epochs", "1", "--batch-size", "8"]


def library_text(file):
    with open(os.path.join(ROOT, file), encoding="utf-8", newline="") as f:
        return f.read()


def library_body(name):
    """The library's own lines of the region `name`: the answer."""
    file, region = library_regions(ROOT)[name]
    return region.body(library_text(file).splitlines(keepends=True))


def put(workspace, name, body):
    """Write `body` (lines) into the region `name` of the workspace, as a student would."""
    path = os.path.join(workspace, BY_NAME[name].file)
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(paste(text, BY_NAME[name].file, name, body))


def reuse_compiled_kernels(workspace):
    """Copy the library's numba cache beside each workspace file that is byte for byte the library's, and give the
    file the library's modification time: numba keys its cache by the source's time and size, so the compiled code
    is valid there, and the workspace need not compile its kernels again (tens of seconds on two cores)."""
    for cache in glob.glob(os.path.join(ROOT, "tinycnn", "**", "__pycache__", "*.nb[ic]"), recursive=True):
        folder = os.path.dirname(os.path.dirname(cache))
        source = os.path.join(folder, os.path.basename(cache).split(".")[0] + ".py")
        copy = os.path.join(workspace, os.path.relpath(source, ROOT))
        if os.path.isfile(source) and os.path.isfile(copy) and open(source, "rb").read() == open(copy, "rb").read():
            os.makedirs(os.path.join(os.path.dirname(copy), "__pycache__"), exist_ok=True)
            shutil.copy2(cache, os.path.join(os.path.dirname(copy), "__pycache__"))
            os.utime(copy, ns=(os.stat(source).st_atime_ns, os.stat(source).st_mtime_ns))


def statuses(rows):
    return {row["name"]: row["status"] for row in rows}


def in_workspace(workspace, *args, timeout=300):
    """python ARGS run inside the workspace, as a student runs it (no PYTHONPATH: its own tinycnn comes first)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NUMBA_DISABLE_JIT")}
    return subprocess.run([sys.executable, *args], cwd=workspace, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def library_rows():
    """The library itself graded as a workspace: the answer key must pass its own checks, plain and compiled. It
    also leaves every kernel the checks compile in the library's numba cache, for reuse_compiled_kernels."""
    return [grade.grade_exercise(ROOT, e, timeout=300) for e in EXERCISES]


@pytest.fixture(scope="module")
def unsolved(tmp_path_factory, library_rows):
    workspace = tmp_path_factory.mktemp("class") / "unsolved"
    write_workspace(str(workspace))
    reuse_compiled_kernels(str(workspace))
    return str(workspace)


# -- the markers cannot drift -------------------------------------------------------------------------------------

def test_every_exercise_of_the_table_has_one_region_in_its_file_and_every_region_a_row():
    found = library_regions(ROOT)
    assert sorted(found) == sorted(BY_NAME) and len(EXERCISES) == 10
    for name, (file, region) in found.items():
        assert file == BY_NAME[name].file
        assert any(line.strip() for line in region.body(library_text(file).splitlines(keepends=True)))


@pytest.mark.parametrize("source, message", [
    ("x = 1\n# exercise: relu_backward\ny = 2\n", "line 2: '# exercise: relu_backward' is never closed"),
    ("x = 1\n# end exercise\n", "line 2: '# end exercise' with no '# exercise: NAME' before it"),
    ("# exercise: relu_backward\n# exercise: im2col\n# end exercise\n# end exercise\n",
     "line 2: '# exercise: im2col' inside the region 'relu_backward' opened on line 1"),
    ("# exercise: relu_backwards\n# end exercise\n", "line 1: unknown exercise 'relu_backwards'; expected one of"),
    ("# exercise relu_backward\n# end exercise\n", "line 1: '# exercise relu_backward' is not a marker"),
    ("# exercise: im2col\nx = 1\n# end exercises\n", "line 3: '# end exercises' is not a marker"),
    ("def f():\n    # exercise: im2col\n    x = 1\ny = 2\n    # end exercise\n",
     "line 4: indented less than the marker of 'im2col' on line 2"),
])
def test_markers_that_make_no_region_are_refused_naming_the_line(source, message):
    with pytest.raises(MarkerError, match="^f.py, " + message.replace("(", r"\(").replace(")", r"\)")):
        find_regions(source, "f.py", BY_NAME.keys())


def test_marker_words_inside_a_string_are_text_and_a_good_region_is_found():
    source = ('doc = """\n# exercise: nonsense\n"""\n'
              'def f():\n    # exercise: im2col\n    return 1\n    # end exercise\n')
    (region,) = find_regions(source, "f.py", BY_NAME.keys())
    assert (region.name, region.begin, region.end, region.indent) == ("im2col", 4, 6, "    ")


def test_the_library_scan_refuses_a_name_marked_twice_in_another_file_or_not_at_all(tmp_path):
    shutil.copytree(os.path.join(ROOT, "tinycnn"), tmp_path / "tinycnn", ignore=shutil.ignore_patterns("__pycache__"))
    optim = tmp_path / "tinycnn" / "optim.py"
    original = optim.read_text()
    optim.write_text(original + "\n\ndef f():\n    # exercise: relu_backward\n    pass\n    # end exercise\n")
    with pytest.raises(MarkerError, match="exercise 'relu_backward' is marked (again|here)"):
        library_regions(str(tmp_path))
    optim.write_text(original)
    library_regions(str(tmp_path))                       # mended
    pool = tmp_path / "tinycnn" / "kernels" / "pool.py"
    unmarked = pool.read_text().replace("    # exercise: maxpool_backward\n", "").replace("    # end exercise\n", "")
    pool.write_text(unmarked)
    with pytest.raises(MarkerError, match="names maxpool_backward, but no file of .* marks it"):
        library_regions(str(tmp_path))


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_a_cut_region_holds_a_stub_and_pasting_the_library_lines_back_gives_its_file_byte_for_byte(name):
    e = BY_NAME[name]
    text = library_text(e.file)
    stubbed = cut(text, e.file, {name: e.hint})
    compile(stubbed, e.file, "exec")
    assert f'raise NotImplementedError("exercise {name}: not written yet' in stubbed and stubbed != text
    assert all(len(line) <= 120 for line in stubbed.splitlines())
    assert paste(stubbed, e.file, name, library_body(name)) == text


# -- the workspace ------------------------------------------------------------------------------------------------

def test_the_library_is_its_own_answer_key_every_check_passes_on_it(library_rows):
    assert statuses(library_rows) == {name: "right" for name in BY_NAME}, library_rows

def test_an_unsolved_workspace_grades_not_started_everywhere_and_the_rest_of_the_library_runs(unsolved):
    rows = grade.grade_workspace(unsolved, timeout=120)
    assert statuses(rows) == {name: "not started" for name in BY_NAME}
    assert [row["name"] for row in rows] == [e.name for e in EXERCISES]           # the table's order
    done = in_workspace(unsolved, "-c", "import tinycnn; print(tinycnn.__file__)")
    assert done.stdout.strip() == os.path.join(unsolved, "tinycnn", "__init__.py")
    done = in_workspace(unsolved, "alexnet.py", "summary")
    assert done.returncode == 0 and "Total MACs per image" in done.stdout, done.stderr
    done = in_workspace(unsolved, "alexnet.py", "train", *TINY, "--out", "run")
    assert done.returncode != 0 and "NotImplementedError: exercise" in done.stderr       # says which is missing


def test_every_single_check_reaches_its_region_so_none_can_pass_on_a_stub(unsolved):
    """Each check run alone on the stubs (as plain Python) hits its exercise's NotImplementedError: no check of
    the table would say right with the region removed."""
    script = ("import importlib.util, json, sys\nsys.path.insert(0, sys.argv[1])\n"
              "spec = importlib.util.spec_from_file_location('checks', sys.argv[2])\n"
              "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
              "pairs = json.loads(sys.argv[3])\n"
              "print(json.dumps({f'{e}/{c}': m.run(e, [c], sys.argv[1])['status'] for e, c in pairs}))")
    pairs = [(e.name, c) for e in EXERCISES for c in e.checks]
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    done = subprocess.run([sys.executable, "-c", script, unsolved, grade.CHECKS, json.dumps(pairs)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {f"{e}/{c}": "not started" for e, c in pairs}
    assert len(pairs) == 32


def test_the_workspace_readme_lists_the_exercises_in_order_with_their_math_checks_and_tests(unsolved):
    text = open(os.path.join(unsolved, "README.md"), encoding="utf-8").read()
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    assert [h.split("`")[1] for h in headings] == [e.name for e in EXERCISES]
    for fragment in ("dx = dy W      (N, D)", "dL/dz_nk = (p_nk - [k == y_n]) / N", "dx[argmax] += dy",
                     "`maxpool_overlapping_numerical_gradient`: dx against central differences", "tests/test_pool.py",
                     "NUMBA_DISABLE_JIT=1", "python -m tinycnn.grade ."):
        assert fragment in text, fragment
    assert os.path.isfile(os.path.join(unsolved, "tests", "test_pool.py"))
    assert json.load(open(os.path.join(unsolved, "exercises.json"))) == dict(tool="tinycnn.exercises",
                                                                            exercises=list(BY_NAME))


def test_the_library_lines_pasted_back_grade_right_everywhere_and_the_mini_alexnet_trains(tmp_path, library_rows):
    workspace = str(tmp_path / "solved")
    write_workspace(workspace)
    for name in BY_NAME:
        put(workspace, name, library_body(name))
    for e in EXERCISES:                                  # the student's files are now the library's, marks and all
        assert open(os.path.join(workspace, e.file), "rb").read() == open(os.path.join(ROOT, e.file), "rb").read()
    reuse_compiled_kernels(workspace)
    rows = grade.grade_workspace(workspace, timeout=240)
    assert statuses(rows) == {name: "right" for name in BY_NAME}, rows
    assert {row["name"]: row["modes"] for row in rows if len(row["modes"]) > 1} == {
        e.name: ["plain Python", "compiled"] for e in EXERCISES if e.kernel}
    assert "right (plain Python and compiled)" in "\n".join(grade.grade_table(workspace, rows))
    done = in_workspace(workspace, "alexnet.py", "train", *TINY, "--out", "run")
    assert done.returncode == 0 and "best checkpoint" in done.stdout.splitlines()[-3], done.stderr


# -- planted wrong solutions --------------------------------------------------------------------------------------

def lines(text, indent):
    return [indent + line + "\n" if line else "\n" for line in text.strip("\n").split("\n")]


PLANTED = {   # exercise: (a student's wrong lines, fragments of the message the grader must give)
    "relu_backward": (lines("return np.where(y >= 0, dy, 0)            # passes dy where y == 0 too", " " * 8),
                      ["ReLU.backward on x (2, 3, 4, 5): dx differs from reference.relu_backward at [0, 0, 0, ",
                       "expected 0, yours", "dx = dy where x > 0"]),
    "dropout_forward": (lines("""
mask = None
if training and self.p > 0:
    mask = (self.rng.random(x.shape, dtype=x.dtype) >= self.p).astype(x.dtype)     # survivors not scaled
self.save_for_backward(x_shape=x.shape, dtype=x.dtype, mask=mask)
return x if mask is None else x * mask""", " " * 8),
                        ["Dropout.forward(x, training=True) with p=0.5: y at [0, 0, 0, ", "expected 0 or x / (1 - p)",
                         "survivors are scaled by 1/(1-p)"]),
    "dense_backward": (lines("""
self.weight.grad = x.T @ dy                          # transposed: (D, K)
if self.bias is not None:
    self.bias.grad = dy.sum(axis=0)
return dy @ self.weight.data""", " " * 8),
                       ["Dense.backward of Dense(5, 3) on x (4, 5): weight.grad (dW) has shape (5, 3), expected (3, 5)",
                        "dW = dy^T x: (K, N)(N, D)"]),
    "softmax_cross_entropy_backward": (lines("""
dlogits = self.probabilities.copy()
dlogits[np.arange(len(self.labels)), self.labels] -= 1
return dlogits                                       # the mean's 1/N forgotten""", " " * 8),
                                       ["SoftmaxCrossEntropy.backward on logits (4, 6), labels",
                                        "dlogits differs from reference.softmax_cross_entropy at [0, 0]",
                                        "yours is 4 times it everywhere: a factor off", "the mean over the batch"]),
    "sgd_update": (lines("""
for i in range(w.size):
    vi = momentum * v[i] + decay * w[i] - lr * g[i]     # weight decay's sign flipped
    v[i] = vi
    w[i] += vi""", " " * 4),
                   ["sgd_update (lr 0.1, momentum 0.9, decay 0.001) on float64 arrays of 37: w differs from "
                    "reference.sgd_step at ["]),
    "maxpool_backward": (lines("""
N, C, H, W = dx.shape
for n in range(N):
    for c in range(C):
        for oh in range(dy.shape[2]):
            for ow in range(dy.shape[3]):
                at = argmax[n, c, oh, ow]
                dx[n, c, at // W, at % W] = dy[n, c, oh, ow]         # = where += is needed""", " " * 4),
                         ["MaxPool2d(3, stride=2).backward on x (1, 2, 7, 7): dx differs from the numerical gradient "
                          "at [0, 0, 2, 4]: numerical", "overlapping windows must add (+=)"]),
    "lrn_backward": (None,                               # the library's lines with 2 * two_alpha_beta: a factor of 2
                     ["LocalResponseNorm(size=5, alpha=0.1, beta=0.75, k=2).backward on x (2, 7, 3, 3): dx differs "
                      "from reference.lrn_backward at [0, 0, 0, 0]", "two_alpha_beta is 2 * alpha * beta already"]),
    "im2col": (lines("""
n, C, H, W = x.shape
OH = (H + 2 * PH - KH) // SH + 1
OW = (W + 2 * PW - KW) // SW + 1
for c in range(C):
    for i in range(KH):
        for j in range(KW):
            row = (c * KH + i) * KW + j
            for b in range(n):
                for oh in range(OH):
                    for ow in range(OW):
                        h, w = oh * SH - PH + i, ow * SW - PW + j
                        inside = 0 < h < H and 0 < w < W         # off by one: row 0 and column 0 taken as padding
                        cols[row, (b * OH + oh) * OW + ow] = x[b, c, h, w] if inside else 0""", " " * 4),
               ["im2col on x (1, 2, 4, 5), kernel 3x3, stride (1, 1), padding (0, 0), cols (18, 6): cols differs from "
                "reference.conv2d_forward with one-hot filters at [0, 0] (row c=0, i=0, j=0; column b=0, oh=0, ow=0)"]),
    "col2im": (lines("""
n, C, H, W = dx.shape
OH = (H + 2 * PH - KH) // SH + 1
OW = (W + 2 * PW - KW) // SW + 1
for c in range(C):
    for i in range(KH):
        for j in range(KW):
            row = (c * KH + i) * KW + j
            for b in range(n):
                for oh in range(OH):
                    for ow in range(OW):
                        h, w = oh * SH - PH + i, ow * SW - PW + j
                        if 0 <= h < H and 0 <= w < W:
                            dx[b, c, h, w] = cols[row, (b * OH + oh) * OW + ow]     # = where += is needed""", " " * 4),
               ["col2im on cols (18, 6) for x (1, 2, 4, 5), kernel 3x3, stride (1, 1), padding (0, 0): dx differs from "
                "reference.conv2d_backward with one-hot filters at [0, 0, 0, 1] (image b=0, channel c=0, pixel h=0, "
                "w=1, in 2 windows)", "windows that overlap must add (+=)"]),
    "conv2d_im2col_forward": (None,                      # the library's lines with y[:n1 - n0] for y[n0:n1]
                              ["Conv2d.forward (winograd = False: _im2col_forward) of Conv2d(4, 6, kernel_size=(3, 3), "
                               "stride=(1, 1), padding=(1, 1), groups=2) with memory_budget 17280 (2 images' columns) "
                               "on x (5, 4, 5, 6): y differs from reference.conv2d_forward at [0, 0, 0, 0] (image 0 of "
                               "chunk 0..1 (the chunks: 0..1, 1..3, 3..5), filter 0 of group 0, output pixel (0, 0))",
                               "yours holds image 3's y as image 0's: a chunk written at the wrong images",
                               "y[n0:n1] takes chunk n0..n1"]),
}

EDITED = {   # exercise: (the library's text, a wrong one) in its lines, for a planted solution near the library's
    "lrn_backward": ("- two_alpha_beta *", "- 2 * two_alpha_beta *"),                       # a factor of 2
    "conv2d_im2col_forward": ("y[n0:n1] = ", "y[:n1 - n0] = "),                             # every chunk at 0
}


def edited(name, old, new):
    body = [line.replace(old, new) for line in library_body(name)]
    assert body != library_body(name)
    return body


def planted(name):
    body, fragments = PLANTED[name]
    return (edited(name, *EDITED[name]) if name in EDITED else body), fragments


def test_every_exercise_has_a_planted_wrong_solution():
    assert sorted(PLANTED) == sorted(BY_NAME)


@pytest.mark.parametrize("name", list(BY_NAME))
def test_a_planted_wrong_solution_is_graded_wrong_naming_the_layer_and_the_place(name, tmp_path, library_rows):
    body, fragments = planted(name)
    workspace = str(tmp_path / "planted")
    write_workspace(workspace, [name])
    put(workspace, name, body)
    reuse_compiled_kernels(workspace)
    (row,) = grade.grade_workspace(workspace, timeout=120)
    assert row["status"] == "wrong" and row["mode"] == ("plain Python" if BY_NAME[name].kernel else None), row
    for fragment in fragments:
        assert fragment in row["message"], (fragment, row["message"])
    print(f"{name}: {row['message']}")


def test_conv2d_groups_taken_as_interleaved_rows_are_wrong_and_an_unwritten_im2col_under_it_is_named(tmp_path,
                                                                                                    library_rows):
    """Conv2d's forward calls im2col: while that exercise is a stub, the row says so instead of grading it wrong."""
    workspace = str(tmp_path / "conv")
    write_workspace(workspace, ["im2col", "conv2d_im2col_forward"])
    put(workspace, "conv2d_im2col_forward", library_body("conv2d_im2col_forward"))
    rows = {row["name"]: row for row in grade.grade_workspace(workspace, timeout=120)}
    assert statuses(rows.values()) == dict(im2col="not started", conv2d_im2col_forward="not graded"), rows
    assert rows["conv2d_im2col_forward"]["message"] == (
        "Conv2d.forward (winograd = False: _im2col_forward) calls im2col, another exercise, which is not written "
        "yet: write im2col first (python -m tinycnn.grade . --only im2col)")
    workspace = str(tmp_path / "groups")
    write_workspace(workspace, ["conv2d_im2col_forward"])
    put(workspace, "conv2d_im2col_forward", edited("conv2d_im2col_forward", "cols.reshape(G, -1, cols.shape[1])",
                                                   "cols.reshape(-1, G, cols.shape[1]).transpose(1, 0, 2)"))
    reuse_compiled_kernels(workspace)
    (row,) = grade.grade_workspace(workspace, timeout=120)
    assert row["status"] == "wrong" and row["message"].startswith(
        "Conv2d.forward (winograd = False: _im2col_forward) of Conv2d(4, 6, kernel_size=(3, 2), stride=(2, 2), "
        "padding=(1, 0), groups=2) on x (3, 4, 7, 5) float32: y differs from reference.conv2d_forward at [0, 0, "), row
    assert "of group 0" in row["message"] and "group g's filters g*F/G .. (g+1)*F/G - 1 see channels" in row["message"]
    print(row["message"])


def test_a_kernel_right_as_plain_python_is_right_only_when_numba_compiles_it_too(tmp_path, library_rows):
    """A student's own im2col of plain loops passes both ways; an SGD update through Python lists passes as plain
    Python and fails compiled, and the row says so."""
    workspace = str(tmp_path / "kernels")
    write_workspace(workspace, ["sgd_update", "im2col"])
    correct = PLANTED["im2col"][0]
    put(workspace, "im2col", [line.replace("0 < h < H and 0 < w < W", "0 <= h < H and 0 <= w < W")
                              for line in correct])
    put(workspace, "sgd_update", lines("""
ws, gs, vs = w.tolist(), g.tolist(), v.tolist()      # numba has no tolist
for i in range(len(ws)):
    vs[i] = momentum * vs[i] - decay * ws[i] - lr * gs[i]
    v[i] = vs[i]
    w[i] = ws[i] + vs[i]""", " " * 4))
    reuse_compiled_kernels(workspace)
    sgd, im2col = grade.grade_workspace(workspace, timeout=240)
    assert (im2col["status"], im2col["modes"]) == ("right", ["plain Python", "compiled"]), im2col
    assert (sgd["status"], sgd["mode"]) == ("wrong", "compiled"), sgd
    assert "numba cannot compile it: Unknown attribute 'tolist'" in sgd["message"]
    assert "it is right as plain Python" in sgd["message"]


def test_a_crash_an_endless_loop_or_a_syntax_error_in_one_exercise_leaves_the_others_graded(tmp_path, library_rows):
    workspace = str(tmp_path / "broken")
    write_workspace(workspace, ["relu_backward", "dropout_forward", "dense_backward"])
    reuse_compiled_kernels(workspace)
    put(workspace, "relu_backward", lines("import os\nos._exit(3)", " " * 8))
    put(workspace, "dropout_forward", lines("while True:\n    pass", " " * 8))
    rows = {row["name"]: row for row in grade.grade_workspace(workspace, timeout=8)}
    assert statuses(rows.values()) == dict(relu_backward="wrong", dropout_forward="wrong", dense_backward="not started")
    assert "ReLU.backward: the checking process died (exit code 3)" in rows["relu_backward"]["message"]
    assert "the checks did not finish within 8 s (--timeout)" in rows["dropout_forward"]["message"]
    put(workspace, "relu_backward", lines("return np.where(y > 0, dy, 0", " " * 8))       # a missing bracket
    rows = {row["name"]: row for row in grade.grade_workspace(workspace, ["relu_backward", "dense_backward"])}
    assert statuses(rows.values()) == dict(relu_backward="wrong", dense_backward="not graded")
    with open(os.path.join(workspace, "tinycnn/layers/activation.py"), encoding="utf-8") as f:
        body = 1 + next(i for i, line in enumerate(f, 1) if "# exercise: relu_backward" in line)   # the bad line
    assert rows["relu_backward"]["message"].startswith(
        "tinycnn/layers/activation.py does not import: raised SyntaxError: '(' was never closed "
        f"(tinycnn/layers/activation.py, line {body})")
    assert "fix tinycnn/layers/activation.py first" in rows["dense_backward"]["message"]


# -- the command lines ----------------------------------------------------------------------------------------------

def run_main(main, *args):
    """main(ARGS) in this process -> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:                       # argparse's refusals
            code = stop.code
    return code, out.getvalue(), err.getvalue()


def one_line(code, err, *fragments):
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def test_alexnet_py_exercises_writes_a_workspace_and_refuses_what_it_would_write_over(tmp_path):
    code, out, err = run_main(alexnet.main, "exercises", "--out", tmp_path / "ws", "--only", "im2col,relu_backward")
    assert code == 0, err
    assert out.startswith(f"wrote {tmp_path}/ws: tinycnn with 2 exercises to write (relu_backward, im2col)")
    assert json.load(open(tmp_path / "ws" / "exercises.json"))["exercises"] == ["relu_backward", "im2col"]
    assert "# exercise: dropout_forward" in (tmp_path / "ws" / "tinycnn" / "layers" / "dropout.py").read_text()
    assert (tmp_path / "ws" / "tinycnn" / "layers" / "dropout.py").read_bytes() == open(
        os.path.join(ROOT, "tinycnn", "layers", "dropout.py"), "rb").read()           # not handed out: the library's
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("mine")
    for args, fragments in [
        (["--out", tmp_path / "mine"], [f"--out {tmp_path}/mine: already holds notes.txt; expected a new or empty "
                                        f"folder"]),
        (["--out", tmp_path / "file"], [f"--out {tmp_path}/file: is a file"]),
        (["--out", tmp_path / "new", "--only", "relu_backward,relu"],
         ["--only relu_backward,relu: unknown exercise relu; expected names among relu_backward, dropout_forward, "]),
        (["--out", os.path.join(ROOT, "tinycnn", "ws")], ["is inside the library it would copy"]),
    ]:
        one_line(*run_main(alexnet.main, "exercises", *args)[::2], *fragments)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine" and (tmp_path / "file").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["file", "mine", "ws"]            # no half-written folder left
    (tmp_path / "empty").mkdir()
    assert run_main(alexnet.main, "exercises", "--out", tmp_path / "empty", "--only", "sgd_update")[0] == 0


def test_grade_prints_a_table_per_workspace_and_writes_json_only_over_its_own(unsolved, tmp_path):
    code, out, err = run_main(grade.main, unsolved, unsolved, "--only", "relu_backward", "--json",
                              tmp_path / "grades.json")
    assert code == 1, err                                # not every row is right
    assert out.count(f"{unsolved}: 0 of 1 exercise right\nexercise       result\nrelu_backward  not started\n") == 2
    written = json.loads((tmp_path / "grades.json").read_text())
    assert written["tool"] == "tinycnn.grade" and len(written["workspaces"]) == 2
    assert written["workspaces"][0]["exercises"][0]["status"] == "not started"
    assert run_main(grade.main, unsolved, "--only", "relu_backward", "--json", tmp_path / "grades.json")[0] == 1
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    for args, fragments in [
        ([unsolved, "--json", tmp_path / "notes.json"], [f"--json {tmp_path}/notes.json: already exists and is not a "
                                                         f"JSON file that tinycnn.grade wrote"]),
        ([tmp_path, "--only", "relu_backward"], [f"{tmp_path}: holds no readable exercises.json and tinycnn/"]),
        ([unsolved, "--only", "relu"], ["--only relu: ", "holds no exercise named relu; expected names among its "]),
        ([unsolved, "--timeout", "0"], ["argument --timeout: expected a number of seconds > 0, got '0'"]),
    ]:
        one_line(*run_main(grade.main, *args)[::2], *fragments)
    assert (tmp_path / "notes.json").read_text() == '{"mine": 1}'


def test_regions_module_names_no_exercise_itself():
    """The markers' own docs mention them only inside strings: the library scan reads regions.py as it is."""
    assert find_regions(library_text("tinycnn/regions.py"), "tinycnn/regions.py", BY_NAME.keys()) == []
    stub = regions.stub(regions.Region("x", 0, 1, "  "), "h")
    assert stub[-1].startswith('  raise NotImplementedError("exercise x:')
