/* The two-factor-code app (the "getcode" sample of Azure's authentication
 * walkthrough) as native Nimbus functions, all in one shared object:
 *   number   GET /api/v1/number  (function key)  the "third-party API": {"value": 100..999}
 *   getcode  GET /api/v1/getcode                 calls number, answers {"code","timestamp"}
 *                                                and puts the same JSON on queue "codes"
 *   watcher  queue "codes"                       first sighting: adds the code to table
 *                                                "validcodes" and re-queues it, invisible
 *                                                for CODE_VALID_SECONDS; second: deletes it
 *   verify   GET /api/v1/verify?code=...         {"valid": true|false}
 * Every function keeps no state between calls; randomness comes from getrandom(). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <nimbus/function.h>

#define PARTITION "codes"
#define DEFAULT_VALID_SECONDS 600
#define MAX_VALID_SECONDS (7LL * 24 * 3600) /* Azure's longest visibility timeout */
#define MAX_NUMBER_REPLY (64 * 1024)        /* more than "number" ever sends */
#define NUMBER_TIMEOUT_S 10L

int number(struct nimbus_ctx *ctx);
int getcode(struct nimbus_ctx *ctx);
int watcher(struct nimbus_ctx *ctx);
int verify(struct nimbus_ctx *ctx);

static int random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* Uniform in [0, bound) by rejection, so no value is favoured. */
static int random_below(uint32_t bound, uint32_t *out)
{
    uint32_t limit = UINT32_MAX - UINT32_MAX % bound, r;
    do {
        if (random_bytes(&r, sizeof r) < 0) return -1;
    } while (r >= limit);
    *out = r % bound;
    return 0;
}

/* n letters from [A-Za-z] (what the sample's random_char does), NUL-terminated. */
static int random_letters(char *out, size_t n)
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (size_t i = 0; i < n; i++) {
        uint32_t k;
        if (random_below(sizeof letters - 1, &k) < 0) return -1;
        out[i] = letters[k];
    }
    out[n] = '\0';
    return 0;
}

/* UTC now as Python's str(datetime.utcnow()): "YYYY-MM-DD HH:MM:SS.ffffff". */
static void utc_now(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%06ld", ts.tv_nsec / 1000);
}

static void respond(struct nimbus_ctx *ctx, int status, const char *type, const char *body)
{
    nimbus_set_status(ctx, status);
    nimbus_set_header(ctx, "Content-Type", type);
    nimbus_write(ctx, body, strlen(body));
}

/* Answer with a JSON value, which this consumes. 0, or 1 when out of memory. */
static int respond_json(struct nimbus_ctx *ctx, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!text) return 1;
    respond(ctx, 200, "application/json", text);
    free(text);
    return 0;
}

int number(struct nimbus_ctx *ctx)
{
    uint32_t n;
    if (random_below(900, &n) < 0) {
        nimbus_log(ctx, NIMBUS_LOG_ERROR, "getrandom failed: %s", strerror(errno));
        return 1;
    }
    return respond_json(ctx, json_pack("{s:i}", "value", (int)(100 + n)));
}

struct reply {
    char *data;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *userdata)
{
    struct reply *r = userdata;
    size_t n = size * nmemb;
    if (n > MAX_NUMBER_REPLY - r->len) return 0; /* aborts the transfer */
    char *grown = realloc(r->data, r->len + n + 1);
    if (!grown) return 0;
    memcpy(grown + r->len, p, n);
    r->data = grown;
    r->len += n;
    r->data[r->len] = '\0';
    return n;
}

/* GET the number API with the function key. Returns the HTTP status (0 when
 * there was none: no WEBSITE_HOSTNAME, connection refused, timeout...) and,
 * on 200, the body in *r (caller frees r->data). */
static long call_number_api(struct nimbus_ctx *ctx, struct reply *r)
{
    const char *hostname = nimbus_setting(ctx, "WEBSITE_HOSTNAME");
    const char *key = nimbus_setting(ctx, "NUMBER_API_KEY");
    char url[512], key_header[512];
    struct curl_slist *headers = NULL;
    long status = 0;
    CURL *curl = NULL;

    if (!hostname || !*hostname) {
        nimbus_log(ctx, NIMBUS_LOG_ERROR, "WEBSITE_HOSTNAME is not set");
        goto cleanup;
    }
    if ((size_t)snprintf(url, sizeof url, "http://%s/api/v1/number", hostname) >= sizeof url ||
        (size_t)snprintf(key_header, sizeof key_header, "x-functions-key: %s",
                         key ? key : "") >= sizeof key_header) {
        nimbus_log(ctx, NIMBUS_LOG_ERROR, "WEBSITE_HOSTNAME or NUMBER_API_KEY too long");
        goto cleanup;
    }
    if (!key || !*key) nimbus_log(ctx, NIMBUS_LOG_WARN, "NUMBER_API_KEY is not set");

    curl = curl_easy_init();
    headers = curl_slist_append(headers, "Accept: application/json");
    if (headers && key && *key) {
        struct curl_slist *more = curl_slist_append(headers, key_header);
        if (more) headers = more;
    }
    if (!curl || !headers) {
        nimbus_log(ctx, NIMBUS_LOG_ERROR, "out of memory");
        goto cleanup;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, NUMBER_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);

    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        nimbus_log(ctx, NIMBUS_LOG_ERROR, "GET %s: %s", url, curl_easy_strerror(rc));
        goto cleanup;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) nimbus_log(ctx, NIMBUS_LOG_WARN, "GET %s: HTTP %ld", url, status);

cleanup:
    curl_slist_free_all(headers);
    if (curl) curl_easy_cleanup(curl);
    return status;
}

int getcode(struct nimbus_ctx *ctx)
{
    struct reply r = {NULL, 0};
    json_t *data = NULL, *answer = NULL;
    char *text = NULL;
    char before[4], after[4], code[64], ts[32];
    int ret = 1;

    long status = call_number_api(ctx, &r);
    if (status == 200) {
        data = json_loadb(r.data ? r.data : "", r.len, 0, NULL);
        if (!json_is_integer(json_object_get(data, "value"))) {
            nimbus_log(ctx, NIMBUS_LOG_ERROR, "number API sent no integer \"value\"");
            status = 500;
        }
    }
    if (status != 200) {
        /* As the sample: the error text with the status the API gave. */
        respond(ctx, status > 0 ? (int)status : 500, "text/plain", "Could not get you a code.");
        ret = 0;
        goto cleanup;
    }

    if (random_letters(before, 3) < 0 || random_letters(after, 3) < 0) {
        nimbus_log(ctx, NIMBUS_LOG_ERROR, "getrandom failed: %s", strerror(errno));
        goto cleanup;
    }
    snprintf(code, sizeof code, "%s-%" JSON_INTEGER_FORMAT "-%s", before,
             json_integer_value(json_object_get(data, "value")), after);
    utc_now(ts);
    answer = json_pack("{s:s, s:s}", "code", code, "timestamp", ts);
    text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
    if (!text) goto cleanup;

    if (nimbus_output(ctx, "codes", text, strlen(text)) != 0) {
        nimbus_log(ctx, NIMBUS_LOG_ERROR, "no queue output binding \"codes\"");
        goto cleanup;
    }
    respond(ctx, 200, "application/json", text);
    ret = 0;

cleanup:
    free(text);
    json_decref(answer);
    json_decref(data);
    free(r.data);
    return ret;
}

/* CODE_VALID_SECONDS, within what a queue visibility timeout allows. */
static long long valid_seconds(struct nimbus_ctx *ctx)
{
    const char *s = nimbus_setting(ctx, "CODE_VALID_SECONDS");
    if (!s || !*s) return DEFAULT_VALID_SECONDS;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0) {
        nimbus_log(ctx, NIMBUS_LOG_WARN, "CODE_VALID_SECONDS=%s is not a positive number; "
                   "using %d", s, DEFAULT_VALID_SECONDS);
        return DEFAULT_VALID_SECONDS;
    }
    return v > MAX_VALID_SECONDS ? MAX_VALID_SECONDS : v;
}

static int output_json(struct nimbus_ctx *ctx, const char *binding, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    int rc = text ? nimbus_output(ctx, binding, text, strlen(text)) : -1;
    free(text);
    return rc;
}

/* The sample's queue watcher. The "existing" table input is the entity
 * whose RowKey is the message's "code" (the host binds {code} from the
 * JSON message), or nothing. */
int watcher(struct nimbus_ctx *ctx)
{
    json_t *msg = json_loadb(ctx->trigger_data, ctx->trigger_len, 0, NULL);
    json_t *entity = NULL;
    const char *code = json_string_value(json_object_get(msg, "code"));
    int ret = 1;

    if (!code || !*code) {
        /* Failing sends the message, after its retries, to codes-poison. */
        nimbus_log(ctx, NIMBUS_LOG_ERROR, "message is not {\"code\": ...}: %.*s",
                   (int)(ctx->trigger_len > 200 ? 200 : ctx->trigger_len), ctx->trigger_data);
        goto cleanup;
    }

    size_t len;
    if (nimbus_input(ctx, "existing", &len)) {
        /* Seen again, CODE_VALID_SECONDS later: the code expires. */
        entity = json_pack("{s:s, s:s, s:s}", "PartitionKey", PARTITION, "RowKey", code,
                           "@nimbus.operation", "delete");
        if (output_json(ctx, "validcodes", entity) != 0) goto cleanup;
        nimbus_log(ctx, NIMBUS_LOG_INFO, "code %s expired", code);
    } else {
        /* First sighting: valid from now on, and come back when it expires.
         * The property is "IssuedAt", not "timestamp": Table storage keeps
         * its own "Timestamp" and the two would differ only by case. */
        const char *issued = json_string_value(json_object_get(msg, "timestamp"));
        char now[32];
        if (!issued) {
            utc_now(now);
            issued = now;
        }
        long long secs = valid_seconds(ctx);
        entity = json_pack("{s:s, s:s, s:s}", "PartitionKey", PARTITION, "RowKey", code,
                           "IssuedAt", issued);
        if (output_json(ctx, "validcodes", entity) != 0 ||
            nimbus_output_delayed(ctx, "requeue", ctx->trigger_data, ctx->trigger_len,
                                  secs * 1000) != 0)
            goto cleanup;
        nimbus_log(ctx, NIMBUS_LOG_INFO, "code %s valid for %lld s", code, secs);
    }
    ret = 0;

cleanup:
    if (ret) nimbus_log(ctx, NIMBUS_LOG_ERROR, "watcher failed");
    json_decref(entity);
    json_decref(msg);
    return ret;
}

/* The "entity" table input is the row whose RowKey is ?code= (the host
 * binds {Query.code}); it is present exactly while the code is valid. */
int verify(struct nimbus_ctx *ctx)
{
    const char *code = nimbus_query(ctx, "code");
    size_t len;
    int valid = code && *code && nimbus_input(ctx, "entity", &len) != NULL;
    return respond_json(ctx, json_pack("{s:b}", "valid", valid));
}
