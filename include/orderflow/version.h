/* The build's identity, for `orderflow --version` and the
 * orderflow_build_info metric: the release and the git revision it was
 * built from (the Makefile writes both into build/gen/version.c). */
#ifndef ORDERFLOW_VERSION_H
#define ORDERFLOW_VERSION_H

extern const char of_version[];      /* the release, e.g. "0.9.0" */
extern const char of_git_revision[]; /* 12 hex digits, "-dirty" after them
                                      * when built from changed files;
                                      * "unknown" outside git */

#endif
