/* `nimbus keys …`: list, show, generate, set and delete function keys
 * (master, host, system and per-function keys) in a data directory's store,
 * directly through host/keys.h: no running server is needed, and a running
 * one picks changes up on its next reload. This module owns argument parsing
 * and output only; it never creates a data directory. */
#ifndef NB_CLI_KEYS_CMD_H
#define NB_CLI_KEYS_CMD_H

/* Run one keys command. argv[0] is "keys", argv[1] the subcommand (list,
 * show, new, set, delete), the rest its arguments; nothing in argv is
 * modified or kept. The store is the one in --data DIR (default ./.nimbus,
 * what `nimbus start` uses when run in the current folder). Values go to
 * stdout, errors to stderr as one line. Returns the process exit status: 0
 * on success (and for --help), 1 on an error (missing data directory,
 * unknown key, invalid name or value, store failure), 2 on a usage error. */
int nb_keys_cmd(int argc, char **argv);

#endif
