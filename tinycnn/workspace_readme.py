"""The README.md of a student's workspace: how to work and check, then each exercise in order with the math of
its docstrings (which stay in the code), its hint, the checks that grade it and the tests that guard it."""
import ast
import inspect
import textwrap

from . import exercise_checks

HEAD = """# Exercises: tinycnn, written by you

This folder is a copy of tinycnn, a small CNN framework in NumPy and numba, in which {count} pieces are yours to
write. Each one is marked in its file, where the library's own code was:

    # exercise: NAME
    # Yours to write: a hint
    raise NotImplementedError("exercise NAME: not written yet (see the comment above)")
    # end exercise

Replace the lines between the markers with your code (keep the markers; they are comments). The math is in
the docstrings above them, and below.

**Check your work** from this folder:

    python -m tinycnn.grade .                  # a row per exercise: not started, wrong (and why), or right
    python -m tinycnn.grade . --only NAME      # one exercise

A wrong row names the first check that fails, the layer, the case, the first entry that differs and what was
expected there. Each exercise is graded in a fresh process, so one that crashes does not stop the others.

**Kernels** (files in `tinycnn/kernels/`) are numba code: plain Python loops that numba compiles. The grader runs
them both ways, as plain Python and compiled, and a row says right only when both are. To step through one in a
debugger, or print inside it, run your script with numba switched off:

    NUMBA_DISABLE_JIT=1 python my_script.py

**Everything else works as in the library.** `python alexnet.py summary` runs now; once every row says right,
train the mini AlexNet on the built-in shapes with your layers (`python alexnet.py train --help` for more). This
short run takes under a minute and ends near chance (two epochs are too few to learn much); `python alexnet.py
train` (7 epochs of 7,000 images, a couple of minutes) reaches 90% or more, as the library does:

    python alexnet.py train --epochs 2 --train-images 2000 --val-images 400 --out runs/mine
{tests}
## The exercises, in order
"""

TESTS = """
**The library's tests** of these parts are in `tests/` (they need pytest and hypothesis: `python -m pip install
pytest hypothesis`). Run them from this folder with `python -m pytest tests/FILE` (`python -m` puts this folder's tinycnn first).
"""


def readme(exercises, regions, sources, tests):
    """The README's text. regions: {name: (file, Region)} of the library; sources: {file: the library's text}."""
    parts = [HEAD.format(count=len(exercises), tests=TESTS if tests else "")]
    for number, e in enumerate(exercises, 1):
        file, region = regions[e.name]
        parts.append(f"\n### {number}. `{e.name}`: {e.what}, in `{e.file}`\n\n**Yours to write:** {e.hint}\n")
        for title, doc in docstrings(sources[file], region.begin, e.kernel):
            parts.append(f"\n{title}:\n\n{textwrap.indent(doc, '    ')}\n")
        parts.append("\n**Checked by** (`python -m tinycnn.grade . --only " + e.name + "`"
                     + (", as plain Python and compiled" if e.kernel else "") + "):\n\n")
        for name in e.checks:
            summary = inspect.cleandoc(getattr(exercise_checks, name).__doc__ or "").replace("\n", " ")
            parts.append(f"- `{name}`: {summary}\n")
        if tests:
            parts.append(f"\n**Tests:** {', '.join(f'`{t}`' for t in e.tests if t in tests)}\n")
    return "".join(parts)


def docstrings(text, line, kernel):
    """[(title, docstring)] explaining the code at 0-based `line` of the source `text`: for a kernel, the file's
    legend (its module docstring); then the class and the function around the line."""
    tree = ast.parse(text)
    found = [("The file's legend", ast.get_docstring(tree))] if kernel else []
    node = tree
    while True:
        inner = [child for child in ast.iter_child_nodes(node) if isinstance(child, (ast.ClassDef, ast.FunctionDef))
                 and child.lineno <= line + 1 <= child.end_lineno]
        if not inner:
            break
        node = inner[0]
        kind = "class" if isinstance(node, ast.ClassDef) else "def"
        found.append((f"From `{kind} {node.name}`", ast.get_docstring(node)))
    return [(title, doc) for title, doc in found if doc]
