/* A small signed HTTP client for the storage services, used by the client
 * commands (`nimbus queue`, later `nimbus table`). It owns one libcurl easy
 * handle (kept alive across requests), signs each request exactly like the
 * Python SDK (SharedKey over http/sharedkey.h, or the connection string's SAS
 * appended to the query) and collects status, headers and body. It knows
 * nothing of queue or table semantics beyond parsing their error bodies. */
#ifndef NB_CLI_CLIENT_H
#define NB_CLI_CLIENT_H
#include "cli/connstr.h"
#include "core/buf.h"
#include "core/err.h"
#include "http/request.h"
#include "http/sharedkey.h"
#include <stdbool.h>
#include <stddef.h>

#define NB_CLIENT_QUEUE_VERSION "2021-02-12"
#define NB_CLIENT_TABLE_VERSION "2019-02-02"
#define NB_CLIENT_MAX_BODY (32u * 1024u * 1024u) /* response bodies beyond this fail */
#define NB_CLIENT_MAX_HEADERS 256
#define NB_CLIENT_ERR_LEN 512

struct nb_client {
    void *curl; /* CURL *, kept opaque so callers need no curl.h */
    enum nb_storage_svc svc;
    char *endpoint;     /* e.g. "http://127.0.0.1:10001/devstoreaccount1" */
    char *base_path;    /* the endpoint's path, "" or "/devstoreaccount1" */
    char *account;      /* NULL for SAS and anonymous access */
    unsigned char *key; /* decoded AccountKey; NULL unless SharedKey */
    size_t key_len;
    char *sas;                   /* NULL unless SAS */
    const char *version;         /* x-ms-version sent */
    long timeout_ms;             /* whole-request timeout; 0 = none */
    char err[NB_CLIENT_ERR_LEN]; /* text of the last transport error */
};

/* One outgoing request. Every pointer is borrowed for the call.
 * `path` is the resource path below the endpoint, already %-encoded, starting
 * with '/' ("/" for service-level requests, "/myqueue/messages").
 * `query` holds decoded names and values (the client encodes them and the
 * signature uses them decoded; a value_len of 0 means strlen(value));
 * `headers` are extra request headers (e.g.
 * x-ms-meta-*); the client adds x-ms-date, x-ms-version,
 * x-ms-client-request-id, Content-Length for PUT/POST/DELETE/MERGE, and
 * Content-Type when content_type is set. */
struct nb_client_req {
    const char *method;
    const char *path;
    const struct nb_kv *query;
    size_t nquery;
    const struct nb_kv *headers;
    size_t nheaders;
    const char *content_type; /* NULL: none sent */
    const char *body;         /* may be NULL when body_len is 0 */
    size_t body_len;
};

/* The response. Owned by the caller: initialise with nb_client_resp_init and
 * free with nb_client_resp_cleanup (which also allows reuse). */
struct nb_client_resp {
    long status;
    char *reason;          /* heap; the status line's reason phrase, or NULL */
    struct nb_kv *headers; /* heap; names as received; values trimmed */
    size_t nheaders;
    struct nb_buf body;
};

/* Set up a client for service `svc` from a parsed connection string: picks
 * the queue or table endpoint, copies the credentials. NB_ERR_INVALID (with
 * the reason in c->err) when the connection string has no endpoint for svc
 * or the endpoint is not a URL libcurl accepts. On error the client is
 * already cleaned up. */
enum nb_err nb_client_init(struct nb_client *c, const struct nb_connstr *cs,
                           enum nb_storage_svc svc);
/* Free everything; safe after a failed init and safe to call twice. */
void nb_client_cleanup(struct nb_client *c);

void nb_client_resp_init(struct nb_client_resp *r);
void nb_client_resp_cleanup(struct nb_client_resp *r);

/* Sign and send `req`, filling *resp (initialised; previous contents are
 * dropped). Any HTTP status counts as success here: callers look at
 * resp->status. Errors: NB_ERR_IO for transport failures (connection refused,
 * timeout; the text is in c->err), NB_ERR_TOO_LARGE when the response body
 * exceeds NB_CLIENT_MAX_BODY or signing overflowed, NB_ERR_INVALID for a
 * malformed request (bad method or header value containing CR/LF). */
enum nb_err nb_client_send(struct nb_client *c, const struct nb_client_req *req,
                           struct nb_client_resp *resp);

/* Case-insensitive response header lookup; NULL when absent. */
const char *nb_client_resp_header(const struct nb_client_resp *r, const char *name);

/* The service error carried by a failed response: the code from the body
 * (queue XML <Error><Code>, table JSON odata.error.code; the body wins over
 * the x-ms-error-code header, as in the SDK) and the message. When neither is
 * available the code is "HTTP <status>" and the message the reason phrase.
 * *code and *message are heap strings the caller frees; never NULL. */
void nb_client_resp_error(const struct nb_client_resp *r, char **code, char **message);

#endif
