/* The subcommands: each cmd_<name>() lives in src/cmd_<name>.c, parses its
 * own options and returns the process exit code (CONTRACT 3). */
#ifndef ORDERFLOW_CMD_H
#define ORDERFLOW_CMD_H

int cmd_project(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_broker(int argc, char **argv);

#endif
