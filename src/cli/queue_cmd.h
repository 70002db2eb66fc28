/* `nimbus queue …`: the queue client commands (create, delete, list, put,
 * get, peek, update, delete-message, clear, metadata), modelled on
 * `az storage queue/message`. They talk to a running queue service through
 * cli/client.h; this module owns argument parsing, XML response parsing and
 * output (human text, or JSON with --json), and nothing of the server. */
#ifndef NB_CLI_QUEUE_CMD_H
#define NB_CLI_QUEUE_CMD_H

/* Run one queue command. argv[0] is "queue", argv[1] the subcommand, the
 * rest its arguments; nothing in argv is modified or kept. The connection
 * comes from --connection-string, else $AZURE_STORAGE_CONNECTION_STRING,
 * else the local default (cli/connstr.h). Output goes to stdout, errors to
 * stderr. Returns the process exit status: 0 on success (and for --help),
 * 1 when the service answered with an error or could not be reached (the
 * Azure error code and message are printed), 2 on a usage error. */
int nb_cli_queue_main(int argc, char **argv);

#endif
