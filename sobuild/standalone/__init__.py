"""Brian2's cpp_standalone projects built through the cache: content-addressed object files.

``build.build_project(directory, cache)`` builds the project Brian2 wrote into ``directory``
as its makefile says (sources, flags, link), but keys each object file by what shapes it and
keeps it in the cache: see ``build``.
"""

#: The log of a project's last build, in its directory.
LOG_NAME = "sobuild_build.log"
