"""python -m tinycnn.grade DIR [DIR ...] [--only NAMES] [--json FILE] [--timeout S]: grade students' workspaces.

For each workspace (written by `python alexnet.py exercises`) and each of its exercises, the checks that
tinycnn/exercises.py names run in a fresh Python process whose `import tinycnn` finds the workspace's copy
(DIR first on sys.path), with a time limit: a broken exercise cannot break the grading of another, and the
student's code is what runs, not the installed library. The checks themselves, and the twin they compare with,
are this library's (tinycnn/exercise_checks.py, loaded by its path). A kernel is graded twice, as plain Python
(NUMBA_DISABLE_JIT=1) and compiled, and is right only when both are.

One table per workspace, a row per exercise: "not started" (its stub still raises), "wrong" with the first
failing check in words, "right", or "not graded" when another file of the workspace does not even import.
--json FILE writes the same for a course's scripts. Exit code 0 when every row is right, 1 when some is not,
2 for bad input (one line on stderr).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from .checkpoint import atomic_open, check_writable_file
from .exercises import BY_NAME
from .workspace import read_manifest

CHECKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exercise_checks.py")
JSON_TOOL = "tinycnn.grade"                     # the "tool" of every JSON file this tool writes
PLAIN, COMPILED = {"NUMBA_DISABLE_JIT": "1"}, {"NUMBA_DISABLE_JIT": None}     # None: removed from the environment
MODES = {False: [("", {})], True: [("plain Python", PLAIN), ("compiled", COMPILED)]}     # by Exercise.kernel

# The grading process: the workspace first on sys.path, then this library's checks, loaded by their path.
CHILD = """import importlib.util, sys
name, checks, workspace, result, path = sys.argv[1:]
sys.path.insert(0, workspace)
spec = importlib.util.spec_from_file_location("tinycnn_exercise_checks", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.main([name, checks, workspace, result])
"""


def grade_exercise(workspace, exercise, timeout):
    """-> {"name", "file", "what", "status": "right" | "wrong" | "not started" | "not graded", "message",
    "modes": the ways it ran, "mode": the one that failed, or None}. A kernel runs as plain Python first, then
    compiled (only when plain Python is right)."""
    row = dict(name=exercise.name, file=exercise.file, what=exercise.what, status="right", message=None, modes=[],
               mode=None)
    for mode, env in MODES[exercise.kernel]:
        outcome = run_checks(workspace, exercise, env, timeout)
        row["modes"].append(mode or "compiled")
        status = outcome["status"]
        if status == "import error":
            if outcome.get("file") == exercise.file:
                status, outcome["message"] = "wrong", f"{exercise.file} does not import: {outcome['message']}"
            else:
                status = "not graded"
                outcome["message"] = (f"tinycnn does not import, so nothing can be checked: {outcome['message']}"
                                      f"; fix {outcome.get('file') or 'that'} first")
        elif status == "error":
            status = "not graded"
        if status != "right":
            if mode == "compiled":
                outcome["message"] += ("; it is right as plain Python, so look for what numba compiles differently "
                                       "(types, or writes outside an array, which numba does not check)")
            row.update(status=status, message=outcome["message"], mode=mode or None)    # the way it failed
            return row
    return row


def run_checks(workspace, exercise, env_changes, timeout):
    """One grading process for `exercise` in `workspace`; -> exercise_checks.run's outcome, or "wrong" with why
    the process gave none (a time limit, a crash)."""
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    with tempfile.TemporaryDirectory() as scratch:
        result = os.path.join(scratch, "result.json")
        command = [sys.executable, "-c", CHILD, exercise.name, ",".join(exercise.checks), os.path.abspath(workspace),
                   result, CHECKS]
        try:
            done = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)            # an input() fails instead of waiting
        except subprocess.TimeoutExpired:
            return dict(status="wrong", message=f"{exercise.what}: the checks did not finish within {timeout:g} s "
                                                f"(--timeout): an endless loop?")
        if not os.path.isfile(result):
            last = (done.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
            return dict(status="wrong", message=f"{exercise.what}: the checking process died (exit code "
                                                f"{done.returncode}): {last}")
        with open(result, encoding="utf-8") as f:
            return json.load(f)


def grade_workspace(workspace, only=None, timeout=120.0):
    """-> [row, ...] for the exercises of `workspace` (those of its manifest, or of `only`), in the table's order."""
    handed_out = read_manifest(workspace)
    unknown = [name for name in handed_out if name not in BY_NAME]
    if unknown:
        raise ValueError(f"{workspace}: exercises.json names {', '.join(unknown)}, which this grader does not know; "
                         f"expected names among {', '.join(BY_NAME)}")
    if only is not None:
        missing = [name for name in only if name not in handed_out]
        if missing or not only:
            raise ValueError(f"--only {','.join(only)}: {workspace} holds no exercise named "
                             f"{', '.join(missing) or 'there'}; expected names among its {', '.join(handed_out)}")
        handed_out = [name for name in handed_out if name in only]
    return [grade_exercise(workspace, BY_NAME[name], timeout) for name in BY_NAME if name in handed_out]


def grade_table(workspace, rows):
    """The lines printed for one workspace: a count, then a row per exercise."""
    right = sum(row["status"] == "right" for row in rows)
    width = max(len(row["name"]) for row in rows)
    lines = [f"{workspace}: {right} of {len(rows)} exercise{'s' if len(rows) != 1 else ''} right",
             f"{'exercise':<{width}}  result"]
    for row in rows:
        result = row["status"]
        if result == "right" and len(row["modes"]) > 1:
            result += " (plain Python and compiled)"
        elif row.get("mode") and result != "not started":
            result += f" ({row['mode']})"
        lines.append(f"{row['name']:<{width}}  {result}" + (f": {row['message']}" if row["message"] else ""))
    return lines


def check_json(path):
    """--json: a new file, or a JSON file this tool wrote (it is replaced); never any other file."""
    check_writable_file(path, "--json")
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                ours = json.load(f).get("tool") == JSON_TOOL
        except (ValueError, AttributeError):         # not JSON (or not a JSON object)
            ours = False
        if not ours:
            raise ValueError(f"--json {path}: already exists and is not a JSON file that tinycnn.grade wrote; "
                             f"expected a new file name (or one of grade's, which is replaced)")


def write_json(path, graded):
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(dict(tool=JSON_TOOL, format=1, workspaces=[dict(dir=d, exercises=rows) for d, rows in graded]),
                  f, indent=1)
        f.write("\n")


def seconds(text):
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


class GradeParser(argparse.ArgumentParser):
    """Bad flags print one line naming the flag and what was expected (no usage block), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def grade_parser():
    p = GradeParser(prog="python -m tinycnn.grade", formatter_class=argparse.RawDescriptionHelpFormatter,
                    description="Grade workspaces written by python alexnet.py exercises: a table per workspace, a "
                                "row per exercise (not started, wrong and why, right).",
                    epilog="example:\n  python -m tinycnn.grade submissions/* --json grades.json")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="workspaces to grade")
    p.add_argument("--only", type=lambda text: [n.strip() for n in text.split(",") if n.strip()], metavar="NAMES",
                   help="grade only these exercises, comma-separated (default: all a workspace holds)")
    p.add_argument("--json", metavar="FILE", help="also write the results to this JSON file (a new file, or one "
                                                  "grade wrote)")
    p.add_argument("--timeout", type=seconds, default=120.0, metavar="S",
                   help="seconds each exercise's checks may take, per way it runs (default: 120)")
    return p


def main(argv=None):
    prog = "python -m tinycnn.grade"
    try:
        args = grade_parser().parse_args(argv)
        if args.json:
            check_json(args.json)
        for workspace in args.dirs:                  # every workspace found before any is graded
            read_manifest(workspace)
        graded = []
        for workspace in args.dirs:
            rows = grade_workspace(workspace, args.only, args.timeout)
            graded.append((workspace, rows))
            print("\n".join(grade_table(workspace, rows)) + ("\n" if len(args.dirs) > 1 else ""), flush=True)
        if args.json:
            write_json(args.json, graded)
            print(f"wrote {args.json}")
    except (ValueError, OSError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    return 0 if all(row["status"] == "right" for _, rows in graded for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
