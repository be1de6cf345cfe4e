/* The subcommands: each cmd_<name>() lives in src/cmd_<name>.c, parses its
 * own options and returns the process exit code (docs/reference.md 4). */
#ifndef ORDERFLOW_CMD_H
#define ORDERFLOW_CMD_H

int cmd_place(int argc, char **argv);
int cmd_pay(int argc, char **argv);
int cmd_relay(int argc, char **argv);
int cmd_outbox(int argc, char **argv);
int cmd_project(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_rebuild(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_broker(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
