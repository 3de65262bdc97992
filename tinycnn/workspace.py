"""A student's workspace: the library copied, with the chosen exercises' regions cut out.

    DIR/tinycnn/        the package; each chosen region holds a stub (a hint and a NotImplementedError)
    DIR/alexnet.py      the command line, as in the library: summary works at once, train once the layers do
    DIR/tests/          the library's tests of the chosen exercises' code, with helpers.py and conftest.py
    DIR/README.md       the exercises in order, each with the docstring's math, its checks and its tests
    DIR/exercises.json  the names handed out, read by python -m tinycnn.grade DIR

Every file but the stubbed ones is the library's own, so whatever does not depend on an exercise runs as before.
The folder is built beside DIR under a temporary name and renamed into place when whole: DIR must be new or
empty, and nothing in it is ever written over.
"""
import json
import os
import shutil
import tempfile

from .checkpoint import check_writable_folder
from .exercises import PACKAGE, choose, library_regions
from .regions import cut
from .spelling import argument
from .workspace_readme import readme

MANIFEST = "exercises.json"
MANIFEST_TOOL = "tinycnn.exercises"
TEST_HELPERS = ("tests/conftest.py", "tests/helpers.py")


def write_workspace(out, only=None, root=os.path.dirname(PACKAGE), spell=argument):
    """Write a workspace for the exercises named in `only` (all when None) into the new or empty folder `out`.

    root: the folder holding tinycnn/ and alexnet.py (and tests/ in a checkout). -> the Exercises written, in
    order. Raises ValueError naming `out` or `only` (as `spell` spells them) before anything is written.
    """
    exercises = choose(only, spell)
    check_new_folder(out, root, spell)
    if not os.path.isfile(os.path.join(root, "alexnet.py")):
        raise ValueError(f"{root}: holds tinycnn/ but no alexnet.py beside it; expected the library's checkout or "
                         f"installation")
    regions = library_regions(root)                  # markers that drifted stop it here
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    building = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out))}.", dir=parent)
    try:
        fill(building, root, exercises, regions)
        if os.path.isdir(out):
            os.rmdir(out)                                # empty, as checked
        os.rename(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return exercises


def check_new_folder(out, root, spell):
    """Refuse an `out` that holds anything, is a file, cannot be written, or lies inside the library copied."""
    check_writable_folder(out, spell("out"))
    if os.path.isdir(out) and os.listdir(out):
        names = sorted(os.listdir(out))
        shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
        raise ValueError(f"{spell('out', out)}: already holds {shown}; expected a new or empty folder (a workspace "
                         f"never writes over anything)")
    library = os.path.realpath(os.path.join(root, "tinycnn"))
    if (os.path.realpath(out) + os.sep).startswith(library + os.sep):
        raise ValueError(f"{spell('out', out)}: is inside the library it would copy ({library}); expected a folder "
                         f"outside it")


def fill(folder, root, exercises, regions):
    """Copy the library into `folder`, cut the exercises' regions, add the tests, README.md and the manifest."""
    shutil.copytree(os.path.join(root, "tinycnn"), os.path.join(folder, "tinycnn"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(os.path.join(root, "alexnet.py"), os.path.join(folder, "alexnet.py"))
    by_file = {}
    for e in exercises:
        by_file.setdefault(e.file, {})[e.name] = e.hint
    sources = {}
    for file, hints in by_file.items():
        with open(os.path.join(root, file), encoding="utf-8", newline="") as f:
            sources[file] = f.read()
        text = cut(sources[file], file, hints)
        compile(text, file, "exec")                      # a stub that breaks the file is a bug of this module
        with open(os.path.join(folder, file), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    tests = [t for t in dict.fromkeys(TEST_HELPERS + sum((e.tests for e in exercises), ()))
             if os.path.isfile(os.path.join(root, t))]
    if any(t not in TEST_HELPERS for t in tests):        # an installed library has no tests/
        os.makedirs(os.path.join(folder, "tests"))
        for t in tests:
            shutil.copy2(os.path.join(root, t), os.path.join(folder, t))
    with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme(exercises, regions, sources, [t for t in tests if t not in TEST_HELPERS]))
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(dict(tool=MANIFEST_TOOL, exercises=[e.name for e in exercises]), f, indent=1)
        f.write("\n")


def read_manifest(folder):
    """-> the exercise names of the workspace `folder`. Raises ValueError naming it when it is not one."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.isdir(folder):
        raise ValueError(f"{folder}: {'is not a folder' if os.path.exists(folder) else 'does not exist'}; expected a "
                         f"workspace written by python alexnet.py exercises")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("tool") != MANIFEST_TOOL or not os.path.isfile(
            os.path.join(folder, "tinycnn", "__init__.py")):
        raise ValueError(f"{folder}: holds no readable {MANIFEST} and tinycnn/; expected a workspace written by "
                         f"python alexnet.py exercises")
    return list(manifest.get("exercises", []))
