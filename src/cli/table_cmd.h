/* `nimbus table …` and `nimbus entity …`: the table storage client commands
 * (create, delete and list tables; insert, get, query, merge, replace and
 * delete entities), modelled on `az storage table/entity`. They talk to a
 * running table service through cli/client.h; this module owns argument
 * parsing, typed property values, OData JSON handling and output (human text,
 * or JSON with --json), and nothing of the server. */
#ifndef NB_CLI_TABLE_CMD_H
#define NB_CLI_TABLE_CMD_H

/* Run one table command. argv[0] is "table", argv[1] the subcommand, the
 * rest its arguments; nothing in argv is modified or kept. The connection
 * comes from --connection-string, else $AZURE_STORAGE_CONNECTION_STRING,
 * else the local default (cli/connstr.h; its table endpoint). Output goes to
 * stdout, errors to stderr. Returns the process exit status: 0 on success
 * (and for --help), 1 when the service answered with an error or could not
 * be reached (the Azure error code and message are printed), 2 on a usage
 * error. */
int nb_cli_table_main(int argc, char **argv);

/* Run one entity command; argv[0] is "entity", argv[1] the subcommand.
 * Everything else as nb_cli_table_main. */
int nb_cli_entity_main(int argc, char **argv);

#endif
