"""The layout's rules (issue 16): no import cycle between the library's files, the library never imports the
command line or the benchmarks, and alexnet.py re-exports the library's functions instead of keeping copies."""
import ast
import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTSIDE_THE_LIBRARY = ("alexnet", "benchmarks")          # the command line and the benchmarks import tinycnn


def module_files(root, package):
    """{module name: file} for every .py file of `package` below `root`: tinycnn.layers.conv -> .../conv.py."""
    files = {}
    for folder, _, names in os.walk(os.path.join(root, package)):
        for name in names:
            if name.endswith(".py"):
                parts = os.path.relpath(os.path.join(folder, name), root)[:-3].split(os.sep)
                files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = os.path.join(folder, name)
    return files


def imported_modules(module, path):
    """The absolute names of the modules a file imports, at any depth (imports inside functions count too).

    `from P import n` imports the module P.n when there is one, else P itself (n is a name defined in P).
    """
    is_package = os.path.basename(path) == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            for alias in node.names:
                yield base, alias.name


def import_graph(root, package):
    """-> ({file: set of the package's files it imports}, [(file, module) for imports of OUTSIDE_THE_LIBRARY])."""
    files = module_files(root, package)
    graph, outside = {}, []
    for module, path in files.items():
        graph[path] = set()
        for base, name in imported_modules(module, path):
            if base.split(".")[0] in OUTSIDE_THE_LIBRARY:
                outside.append((os.path.relpath(path, root), base))
            target = files.get(f"{base}.{name}") or files.get(base)
            if target and target != path:
                graph[path].add(target)
    return graph, outside


def find_cycle(graph):
    """One cycle of the graph as a list of nodes [a, b, ..., a], or None."""
    state, stack = {}, []                      # state: 1 while on the stack, 2 when done

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_library_has_no_import_cycle_and_never_imports_the_command_line_or_the_benchmarks():
    graph, outside = import_graph(ROOT, "tinycnn")
    assert len(graph) > 30 and graph[os.path.join(ROOT, "tinycnn", "runs.py")]      # it did read the files
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(os.path.relpath(p, ROOT) for p in cycle)
    assert outside == [], f"the library imports the command line or the benchmarks: {outside}"


def test_the_check_finds_a_planted_cycle_and_a_planted_import_of_the_command_line(tmp_path):
    """Planted: a imports b at the top, b imports a inside a function (still a cycle); c imports alexnet."""
    package = tmp_path / "lib"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .b import g\n")
    (package / "a.py").write_text("from .sub import b\n\ndef f():\n    return b.g()\n")
    (package / "sub" / "b.py").write_text("def g():\n    from ..a import f\n    return f\n")
    (package / "c.py").write_text("import numpy\n\ndef h():\n    import alexnet\n"
                                  "    from benchmarks.bench import main\n")
    graph, outside = import_graph(str(tmp_path), "lib")
    cycle = [os.path.relpath(p, tmp_path) for p in find_cycle(graph)]
    assert cycle == ["lib/a.py", "lib/sub/b.py", "lib/a.py"]
    assert outside == [("lib/c.py", "alexnet"), ("lib/c.py", "benchmarks.bench")]
    (package / "sub" / "b.py").write_text("def g():\n    return 1\n")                  # the cycle mended
    assert find_cycle(import_graph(str(tmp_path), "lib")[0]) is None


def test_alexnet_py_re_exports_what_design_md_promises_and_no_more():
    """alexnet.alexnet and alexnet.load_checkpoint are the library's functions (DESIGN.md promises both); every
    other name alexnet.py takes from the library it takes to use, none only to pass on."""
    import alexnet as cli
    import tinycnn.runs
    from tinycnn.models import alexnet
    assert cli.alexnet is alexnet and cli.load_checkpoint is tinycnn.runs.load_checkpoint
    assert cli.alexnet(num_classes=3, variant="mini", rng=0)["fc8"].out_features == 3
    tree = ast.parse(open(os.path.join(ROOT, "alexnet.py"), encoding="utf-8").read())
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("tinycnn") for alias in node.names}
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert sorted(imported - used) == []


def top_level_definitions(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def test_the_command_line_keeps_no_second_copy_of_library_code():
    """A function or class defined in alexnet.py or benchmarks/ is defined nowhere in tinycnn/ (main aside)."""
    library = set().union(*(top_level_definitions(p) for p in module_files(ROOT, "tinycnn").values()))
    benchmarks = sorted(glob.glob(os.path.join(ROOT, "benchmarks", "*.py")))
    for outside in ["alexnet.py"] + [os.path.relpath(path, ROOT) for path in benchmarks]:
        copies = (top_level_definitions(os.path.join(ROOT, outside)) & library) - {"main"}
        assert not copies, f"{outside} defines again: {sorted(copies)}"


@pytest.mark.parametrize("name", ["alexnet", "two_towers"])
def test_tinycnn_models_exports_the_builders(name):
    import tinycnn.models
    assert name in tinycnn.models.__all__ and callable(getattr(tinycnn.models, name))
