/* Azure Storage connection strings for the client commands (`nimbus queue`,
 * later `nimbus table`): parsing "Key=Value;..." the way the Python SDK does
 * (keys case-insensitive, values split at the first '='), deriving service
 * endpoints, and choosing between --connection-string, the environment and
 * the local default. Owns no network code; the result is plain heap strings. */
#ifndef NB_CLI_CONNSTR_H
#define NB_CLI_CONNSTR_H
#include "core/err.h"
#include <stddef.h>

#define NB_CONNSTR_ENV "AZURE_STORAGE_CONNECTION_STRING"
#define NB_CONNSTR_MAX 8192 /* longer input is rejected as malformed */
#define NB_LOCAL_QUEUE_ENDPOINT "http://127.0.0.1:10001/devstoreaccount1"
#define NB_LOCAL_TABLE_ENDPOINT "http://127.0.0.1:10002/devstoreaccount1"

/* A parsed connection string. Every string is heap memory owned by the
 * struct (freed by nb_connstr_cleanup) or NULL when not known.
 * Invariant after a successful parse: at least one of queue_endpoint and
 * table_endpoint is set; either (account and key) or sas is set, or neither
 * (anonymous access); endpoints carry no trailing '/'. */
struct nb_connstr {
    char *protocol;     /* DefaultEndpointsProtocol, lowercase; "https" if absent */
    char *account;      /* AccountName */
    char *account_key;  /* AccountKey, base64 as given */
    unsigned char *key; /* AccountKey decoded */
    size_t key_len;
    char *sas;             /* SharedAccessSignature without a leading '?' */
    char *endpoint_suffix; /* EndpointSuffix; "core.windows.net" if absent */
    char *queue_endpoint;  /* QueueEndpoint, or derived from account + suffix */
    char *table_endpoint;  /* TableEndpoint, or derived from account + suffix */
};

/* Zero the struct (every field NULL). */
void nb_connstr_init(struct nb_connstr *cs);
/* Free every field and zero the struct; safe on an initialised or parsed
 * struct and safe to call twice. */
void nb_connstr_cleanup(struct nb_connstr *cs);

/* Parse `s` into *cs (which must be initialised and empty).
 * Rules, as in azure.storage.*._shared.base_client.parse_connection_str:
 *  - segments separated by ';' (trailing ';' and empty segments ignored),
 *    each "Key=Value" split at the first '=' (SAS and keys contain '=');
 *    keys compare case-insensitively, whitespace around keys and values is
 *    trimmed, a later duplicate replaces an earlier one;
 *  - UseDevelopmentStorage=true gives the local default (see
 *    nb_connstr_local_default) and may not be combined with other keys
 *    except DevelopmentStorageProxyUri, which is ignored;
 *  - an endpoint missing from the string is derived as
 *    "{protocol}://{account}.{queue|table}.{suffix}" when AccountName is set;
 *  - AccountKey must be valid base64 and needs AccountName;
 *    SharedAccessSignature is used only when there is no AccountKey.
 * Returns NB_OK, or NB_ERR_INVALID with *why (static text, may be NULL)
 * describing the problem; on error *cs is left empty. Unknown keys are
 * ignored (BlobEndpoint, FileEndpoint, ...). */
enum nb_err nb_connstr_parse(const char *s, struct nb_connstr *cs, const char **why);

/* Fill *cs (initialised, empty) with the local Nimbus default:
 * devstoreaccount1, its well-known key, NB_LOCAL_QUEUE_ENDPOINT and
 * NB_LOCAL_TABLE_ENDPOINT, protocol http. Never fails. */
void nb_connstr_local_default(struct nb_connstr *cs);

/* Choose and parse the connection string for a client command: `arg` (the
 * --connection-string value) if non-NULL, else the environment value `env`
 * (pass getenv(NB_CONNSTR_ENV)) if non-NULL and not empty, else the local
 * default. Errors as nb_connstr_parse. */
enum nb_err nb_connstr_resolve(const char *arg, const char *env, struct nb_connstr *cs,
                               const char **why);

#endif
