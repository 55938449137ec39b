"""The parts of a standalone build that need no Brian2: the makefile, the include scanner
that keys objects by the headers they read, and the shape a code object needs to be merged."""

from __future__ import annotations

import pytest

from sobuild.standalone.includes import IncludeScanner, UnfollowedInclude, include_dirs
from sobuild.standalone.makefile import ProjectError, read_makefile
from sobuild.standalone.merge import code_object, declared_functions, group, render

MAKEFILE = """PROGRAM = main

SRCS = brianlib/spikequeue.cpp code_objects/a.cpp main.cpp
OBJS = ${SRCS:.cpp=.o}
OPTIMISATIONS = -I"/opt/my include" -w -O3 -std=c++17
CXXFLAGS = -c -Wno-write-strings $(OPTIMISATIONS) -I. -fopenmp
LFLAGS = -fopenmp -L"/opt/lib" -lgsl
"""


def test_makefile_gives_sources_and_flags_as_make_would(tmp_path):
    (tmp_path / "makefile").write_text(MAKEFILE)
    makefile = read_makefile(tmp_path)
    assert makefile.sources == ("brianlib/spikequeue.cpp", "code_objects/a.cpp", "main.cpp")
    assert makefile.compile_flags == ("-Wno-write-strings", "-I/opt/my include", "-w", "-O3",
                                      "-std=c++17", "-I.", "-fopenmp")
    assert makefile.link_flags == ("-fopenmp", "-L/opt/lib", "-lgsl")
    assert makefile.program == "main"


def test_a_missing_or_foreign_makefile_is_named(tmp_path):
    with pytest.raises(ProjectError, match=r"makefile .*makefile"):
        read_makefile(tmp_path)
    (tmp_path / "makefile").write_text("all:\n\tg++ main.cpp\n")
    with pytest.raises(ProjectError, match="assigns no CXXFLAGS"):
        read_makefile(tmp_path)


def test_headers_are_followed_through_the_project_and_include_dirs(tmp_path):
    project, extra = tmp_path / "project", tmp_path / "extra"
    (project / "brianlib").mkdir(parents=True)
    extra.mkdir()
    (project / "objects.h").write_text('#include "brianlib/clocks.h"\n#include <vector>\n')
    (project / "brianlib" / "clocks.h").write_text('#include "common.h"\n')
    (project / "brianlib" / "common.h").write_text("// beside clocks.h\n")
    (extra / "user.h").write_text("#define USER 1\n")
    (project / "unrelated.h").write_text("")
    dirs = include_dirs(("-I", str(extra), "-I."), project)
    source = '#include "objects.h"\n#ifdef X\n#include <user.h>\n#endif\n#include <cmath>\n'

    headers = IncludeScanner(project, dirs).headers(source, project)
    assert list(headers) == [str(extra / "user.h"), "brianlib/clocks.h", "brianlib/common.h",
                             "objects.h"]  # <vector>, <cmath>: the compiler's own

    (project / "brianlib" / "common.h").write_text("// changed\n")
    (project / "unrelated.h").write_text("// changed too, but read by nobody\n")
    changed = IncludeScanner(project, dirs).headers(source, project)
    assert [k for k in headers if headers[k] != changed[k]] == ["brianlib/common.h"]


def test_an_include_named_by_a_macro_cannot_be_followed(tmp_path):
    with pytest.raises(UnfollowedInclude, match="HEADER"):
        IncludeScanner(tmp_path, []).headers("#include HEADER\n", tmp_path)


HEADER = "\n#ifndef _INCLUDED_x\n#define _INCLUDED_x\n\nvoid _run_x();\nvoid _debugmsg_x();\n\n#endif\n"
SOURCE = """#include "code_objects/x.h"
#include "objects.h"
#include<cmath>

namespace {
    double helper(double v) { return 2 * v; }
}
#define SCALE 3

void _run_x()
{
    double v = helper(SCALE);
}

void _debugmsg_x() {}
"""


def test_a_code_object_is_merged_only_in_brian2s_shape():
    assert declared_functions(HEADER) == ("_run_x", "_debugmsg_x")
    assert declared_functions(HEADER + "extern int counter;\n") is None
    member = code_object("code_objects/x.cpp", SOURCE, HEADER)
    assert member is not None and member.macros == ("SCALE",)
    assert code_object("code_objects/x.cpp", SOURCE.replace("void _debugmsg_x() {}", ""),
                       HEADER) is None  # declared but not defined: it would not link


def test_a_unit_keeps_brian2s_file_names_and_line_numbers():
    members = [code_object(f"code_objects/{n}.cpp", SOURCE.replace("_x", f"_{n}"),
                           HEADER.replace("_x", f"_{n}")) for n in ("a", "b")]
    text = render(members)
    assert text.count('#include "objects.h"') == 1
    assert '#line 1 "code_objects/a.cpp"' in text and '#line 1 "code_objects/b.cpp"' in text
    lines = text.split("\n")
    start = lines.index('#line 1 "code_objects/b.cpp"')
    # the line after "#line 1" is line 1: the function is where it is in its own file
    assert lines[start + 1 + SOURCE.split("\n").index("void _run_x()")] == "void _run_b()"
    assert "void _run_b() { sobuild_co_b::_run_b(); }" in text


def test_grouping_depends_on_names_alone():
    members = [code_object(f"code_objects/{n}.cpp", SOURCE.replace("_x", f"_{n}"),
                           HEADER.replace("_x", f"_{n}")) for n in "edcba"]
    units = group(members, 2)
    assert [[m.path[-5] for m in unit] for unit in units] == [["a", "b"], ["c", "d", "e"]]
