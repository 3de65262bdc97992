"""Exercise regions: the lines of the library's own source that a student writes, marked by two comments.

    # exercise: relu_backward
    ...the library's lines, the answer...
    # end exercise

The markers are comments, so the library runs as if they were not there. `python alexnet.py exercises` cuts
each chosen region's lines out and puts a stub in their place (`cut`); the tests paste the library's lines back
(`paste`) and find the library's own file again, byte for byte. A region holds whole lines, indented at least
as deep as its first marker; regions do not nest, and each name marks one region in the whole library. Only
comments are markers: the same words inside a string (this docstring) are text.
"""
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# exercise: (?P<name>\S+)[ \t]*$")
END = re.compile(r"^[ \t]*# end exercise[ \t]*$")
ANY_MARKER = re.compile(r"^[ \t]*#\s*(end\s+)?exercise", re.IGNORECASE)     # a misspelt marker


class MarkerError(ValueError):
    """Markers that do not make a region: unbalanced, nested, misspelt, unknown or used twice."""


@dataclass(frozen=True)
class Region:
    """One region of a file: lines[begin] is its `# exercise:` line, lines[end] its `# end exercise` line."""
    name: str
    begin: int
    end: int
    indent: str

    def body(self, lines):
        """The lines between the markers (each with its line ending)."""
        return lines[self.begin + 1:self.end]


def find_regions(text, path, known):
    """-> [Region, ...] of the source `text` of file `path`, in order. Raises MarkerError naming the file, the
    line and what was wrong, for markers that are unbalanced, nested or misspelt, names not in `known`, or a
    region's line indented less than its marker."""
    lines, regions, open_at = text.splitlines(keepends=True), [], None
    comments = comment_lines(text)
    for number, line in enumerate(lines):
        marker = number in comments
        begin, end = marker and BEGIN.match(line.rstrip("\r\n")), marker and END.match(line.rstrip("\r\n"))
        where = f"{path}, line {number + 1}"
        if begin:
            if open_at is not None:
                raise MarkerError(f"{where}: '# exercise: {begin['name']}' inside the region "
                                  f"'{open_at[1]['name']}' opened on line {open_at[0] + 1}; expected "
                                  f"'# end exercise' first")
            if begin["name"] not in known:
                raise MarkerError(f"{where}: unknown exercise {begin['name']!r}; expected one of "
                                  f"{', '.join(sorted(known))} (tinycnn/exercises.py names them)")
            open_at = (number, begin)
        elif end:
            if open_at is None:
                raise MarkerError(f"{where}: '# end exercise' with no '# exercise: NAME' before it")
            regions.append(Region(open_at[1]["name"], open_at[0], number, open_at[1]["indent"]))
            open_at = None
        elif marker and ANY_MARKER.match(line):
            raise MarkerError(f"{where}: {line.strip()!r} is not a marker; expected '# exercise: NAME' or "
                              f"'# end exercise'")
        elif open_at is not None and line.strip() and not line.startswith(open_at[1]["indent"]):
            raise MarkerError(f"{where}: indented less than the marker of '{open_at[1]['name']}' on line "
                              f"{open_at[0] + 1}; a region holds whole lines of one block")
    if open_at is not None:
        raise MarkerError(f"{path}, line {open_at[0] + 1}: '# exercise: {open_at[1]['name']}' is never closed; "
                          f"expected '# end exercise' after it")
    return regions


def comment_lines(text):
    """The 0-based numbers of the lines of `text` that hold nothing but a comment."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return {t.start[0] - 1 for t in tokens if t.type == tokenize.COMMENT and not t.line[:t.start[1]].strip()}


def replace_body(text, region, body):
    """`text` with the lines between the markers of `region` replaced by `body` (a list of lines)."""
    lines = text.splitlines(keepends=True)
    return "".join(lines[:region.begin + 1] + list(body) + lines[region.end:])


def stub(region, hint, newline="\n"):
    """The lines a student finds in place of a region: the hint as a comment, and a raise that the grader
    reads as "not started"."""
    i = region.indent
    comment = textwrap.wrap(f"Yours to write: {hint}", 116 - len(i), break_on_hyphens=False)
    return ([f"{i}# {line}{newline}" for line in comment]
            + [f'{i}raise NotImplementedError("exercise {region.name}: not written yet (see the comment above)")'
               f"{newline}"])


def newline_of(text):
    return "\r\n" if "\r\n" in text else "\n"


def cut(text, path, hints):
    """`text` with each region named in `hints` ({name: hint}) replaced by its stub; other regions stay."""
    for region in reversed(find_regions(text, path, hints.keys() | _names_in(text))):
        if region.name in hints:
            text = replace_body(text, region, stub(region, hints[region.name], newline_of(text)))
    return text


def paste(text, path, name, body):
    """`text` with the region `name` holding `body` (a list of lines) instead of what it holds."""
    regions = [r for r in find_regions(text, path, _names_in(text)) if r.name == name]
    if len(regions) != 1:
        raise MarkerError(f"{path}: expected one region '{name}', found {len(regions)}")
    return replace_body(text, regions[0], body)


def _names_in(text):
    """Every name a begin marker of `text` spells (to find regions without judging their names)."""
    comments = comment_lines(text)
    return {m["name"] for n, m in enumerate(map(BEGIN.match, text.splitlines())) if m and n in comments}
