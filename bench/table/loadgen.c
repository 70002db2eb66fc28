/* tloadgen: a small closed-loop HTTP load generator for the Azure Table REST API
 * (adapted from bench/queue/loadgen.c). Speaks to any server (Nimbus, Azurite)
 * through pre-signed account-SAS URLs, so no request is signed on the fly.
 * Invariant: every slot is one keep-alive connection with exactly one request in
 * flight, so "--conns N" means N connections and N requests in flight. An "op" is
 * one logical operation: a query op follows continuation tokens (one request
 * per page) until the server sends none.
 *
 * Data set of the read workloads (written by "preload", read by get/pkquery/range/
 * scan): PARTITIONS partitions "p00000".."p<P-1>", 100 rows each (--rows-per),
 * RowKey "<letter><4 digits>" with letter a,b,c,d in turn (so 25 rows per letter
 * and partition), IntProp = partition * rows_per + row (unique), plus the same
 * 10 properties as the insert workload.
 *
 * Subcommands (all print one "key=value ..." line on stdout):
 *   sas       --key B64 [--account A]           account SAS query (sv=2019-02-02 ss=t srt=sco sp=rwdlacu)
 *   mktable   --base URL --sas S --table T      POST /Tables (201/204 ok, 409 counts as ok)
 *   rmtable   --base URL --sas S --table T      DELETE /Tables('T')
 *   run       --base URL --sas S --table T --mode MODE [--conns N] [--threads T]
 *             [--duration S] [--warmup S] [--min-ops N] [--total N] [--rss-pid PID]
 *             [--partitions P] [--rows-per R] [--seed N]
 *     MODE insert   POST /{t}, 10-property JSON entity, Prefer: return-no-content;
 *                   PartitionKey "p<slot>", RowKey = per-slot counter (unique keys)
 *          get      GET /{t}(PartitionKey='pX',RowKey='rY') of a random pre-loaded row
 *          pkquery  GET /{t}()?$filter=PartitionKey eq 'pX'                 (100 rows)
 *          range    ... PartitionKey eq 'pX' and RowKey ge 'a' and RowKey lt 'b' (25 rows)
 *          scan     ... IntProp eq N  (N random in the data set: a full scan, 1 row)
 *          preload  POST /$batch, one partition (rows-per inserts) per request;
 *                   stops after --partitions requests
 *     --min-ops N: keep starting ops after the window until N ops were measured,
 *       and count ops that started inside the window whenever they end (for slow scans)
 *   startwait --port P --pidfile F [--log F] -- cmd args...
 *             fork+exec cmd, poll a TCP connect to 127.0.0.1:P every 100 us, print
 *             startup_ms (exec -> first accepted connect) and leave cmd running.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define API_VERSION "2019-02-02" /* what azure-data-tables 12.4 sends */

/* ---------- small helpers ---------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg)
{
    fprintf(stderr, "tloadgen: %s\n", msg);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static long parse_long(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s) {
        fprintf(stderr, "tloadgen: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

static double parse_double(const char *s, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s) {
        fprintf(stderr, "tloadgen: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

/* Percent-encode everything but RFC 3986 unreserved characters. */
static void urlencode(const char *in, size_t inlen, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        int keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_' || c == '.' || c == '~';
        if (o + 4 >= outsz)
            break;
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
}

/* A growable byte buffer. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_reserve(struct sbuf *b, size_t more)
{
    if (b->len + more + 1 > b->cap) {
        b->cap = (b->len + more + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
}

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---------- account SAS (storage-queue-table.md 1.5, sv < 2020-12-06: no ses line) ---------- */

static int cmd_sas(const char *key_b64, const char *account)
{
    unsigned char key[128];
    int klen = EVP_DecodeBlock(key, (const unsigned char *)key_b64, (int)strlen(key_b64));
    if (klen <= 0)
        die("bad base64 key");
    size_t kl = strlen(key_b64);
    while (kl > 0 && key_b64[kl - 1] == '=') { /* EVP_DecodeBlock counts padding */
        klen--;
        kl--;
    }
    const char *sp = "rwdlacu", *ss = "t", *srt = "sco", *se = "2099-01-01T00:00:00Z";
    char sts[512];
    /* account\nsp\nss\nsrt\nst\nse\nsip\nspr\nsv\n */
    int n = snprintf(sts, sizeof sts, "%s\n%s\n%s\n%s\n\n%s\n\n\n%s\n", account, sp, ss, srt, se,
                     API_VERSION);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, klen, (unsigned char *)sts, (size_t)n, mac, &maclen);
    unsigned char sig[128];
    EVP_EncodeBlock(sig, mac, (int)maclen);
    char sig_enc[256], se_enc[64];
    urlencode((char *)sig, strlen((char *)sig), sig_enc, sizeof sig_enc);
    urlencode(se, strlen(se), se_enc, sizeof se_enc);
    printf("sv=%s&ss=%s&srt=%s&sp=%s&se=%s&sig=%s\n", API_VERSION, ss, srt, sp, se_enc, sig_enc);
    return 0;
}

/* ---------- headers ---------- */

static struct curl_slist *std_headers(const char *content_type, int prefer_no_content)
{
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "x-ms-version: " API_VERSION);
    h = curl_slist_append(h, "DataServiceVersion: 3.0");
    h = curl_slist_append(h, "MaxDataServiceVersion: 3.0;NetFx");
    h = curl_slist_append(h, "Accept: application/json;odata=minimalmetadata");
    h = curl_slist_append(h, "Expect:"); /* never wait for 100-continue */
    if (content_type) {
        char line[256];
        snprintf(line, sizeof line, "Content-Type: %s", content_type);
        h = curl_slist_append(h, line);
    }
    if (prefer_no_content)
        h = curl_slist_append(h, "Prefer: return-no-content");
    return h;
}

static size_t discard_cb(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

/* ---------- one-shot requests: create / delete table ---------- */

static int cmd_table(int create, const char *base, const char *table, const char *sas)
{
    char url[4096], body[256];
    CURL *c = curl_easy_init();
    struct curl_slist *h;
    if (create) {
        snprintf(url, sizeof url, "%s/Tables?%s", base, sas);
        snprintf(body, sizeof body, "{\"TableName\":\"%s\"}", table);
        h = std_headers("application/json;odata=nometadata", 1);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        snprintf(url, sizeof url, "%s/Tables('%s')?%s", base, table, sas);
        h = std_headers(NULL, 0);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 600000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
    double t0 = now_s();
    CURLcode rc = curl_easy_perform(c);
    double secs = now_s() - t0;
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    printf("%s status=%ld curl=%d secs=%.3f\n", create ? "mktable" : "rmtable", st, (int)rc, secs);
    return (rc == CURLE_OK && ((st >= 200 && st < 300) || (create && st == 409))) ? 0 : 1;
}

/* ---------- entities ---------- */

/* The 10 custom properties of every entity (strings, Int32, Int64 as an annotated
 * string, Double, Boolean, DateTime): about 400 bytes of JSON with the keys. */
static void entity_json(struct sbuf *b, const char *pk, const char *rk, long intprop)
{
    sb_printf(b,
              "{\"PartitionKey\":\"%s\",\"RowKey\":\"%s\","
              "\"Name\":\"customer-%ld\",\"City\":\"Amsterdam\","
              "\"Description\":\"a benchmark entity with a moderately long text property %ld\","
              "\"IntProp\":%ld,\"Count\":%ld,"
              "\"Big\":\"%lld\",\"Big@odata.type\":\"Edm.Int64\","
              "\"Score\":%ld.25,\"Ratio\":0.5,\"Active\":%s,"
              "\"Created\":\"2024-05-06T07:08:%02ld.1234567Z\",\"Created@odata.type\":\"Edm.DateTime\"}",
              pk, rk, intprop, intprop, intprop, intprop % 1000, 1099511627776LL + intprop,
              intprop % 10000, (intprop & 1) ? "true" : "false", intprop % 60);
}

static void row_key(char *out, size_t n, long row)
{
    snprintf(out, n, "%c%04ld", 'a' + (int)(row % 4), row);
}

/* One $batch body: rows_per inserts into partition p. */
static void batch_body(struct sbuf *b, const char *base, const char *table, long p, long rows_per,
                       const char *bnd, const char *cs)
{
    char pk[32], rk[32];
    struct sbuf ent = {0};
    snprintf(pk, sizeof pk, "p%05ld", p);
    sb_printf(b, "--%s\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n", bnd, cs);
    for (long r = 0; r < rows_per; r++) {
        row_key(rk, sizeof rk, r);
        ent.len = 0;
        entity_json(&ent, pk, rk, p * rows_per + r);
        sb_printf(b,
                  "--%s\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
                  "Content-ID: %ld\r\n\r\n"
                  "POST %s/%s HTTP/1.1\r\nx-ms-version: " API_VERSION "\r\nDataServiceVersion: 3.0\r\n"
                  "Prefer: return-no-content\r\nContent-Type: application/json;odata=nometadata\r\n"
                  "Accept: application/json;odata=minimalmetadata\r\nContent-Length: %zu\r\n\r\n",
                  cs, r, base, table, ent.len);
        sb_add(b, ent.p, ent.len);
        sb_add(b, "\r\n", 2);
    }
    sb_printf(b, "--%s--\r\n\r\n--%s--\r\n", cs, bnd);
    free(ent.p);
}

/* ---------- the load loop ---------- */

enum mode { MODE_INSERT, MODE_GET, MODE_PKQUERY, MODE_RANGE, MODE_SCAN, MODE_PRELOAD };
static const char *const mode_names[] = {"insert", "get", "pkquery", "range", "scan", "preload"};

struct lat {
    uint32_t *v; /* units of 100 ns (saturates at ~429 s) */
    size_t n, cap;
};

static void lat_add(struct lat *l, uint32_t v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = v;
}

static void lat_push(struct lat *l, uint64_t ns)
{
    uint64_t u = ns / 100;
    lat_add(l, u > UINT32_MAX ? UINT32_MAX : (uint32_t)u);
}

struct cfg {
    const char *base, *table, *sas;
    enum mode mode;
    int conns, threads;
    double duration, warmup;
    long min_ops, total;
    long partitions, rows_per;
    uint64_t seed;
};

struct shared {
    double t_start, t_end; /* measurement window (monotonic s) */
    atomic_long issued;    /* ops started (for --total / preload partitions) */
    atomic_long measured;  /* ops started inside the window (for --min-ops) */
    atomic_int stop;
};

struct slot {
    CURL *easy;
    int gid;           /* global slot number: insert partition "p<gid>" */
    long counter;      /* insert RowKey */
    long part;         /* preload: the partition this op writes */
    uint64_t t_req, t_op;
    int op_measured;   /* op started inside the window */
    long pages, rows;  /* of the current op */
    char filter[512];  /* url-encoded $filter of the current query op */
    char npk[512], nrk[512];
    struct sbuf body, req;
    char url[8192];
};

struct tstate {
    pthread_t tid;
    const struct cfg *cfg;
    struct shared *sh;
    int nslots, first_gid;
    struct slot *slots;
    CURLM *multi;
    struct curl_slist *hdr_insert, *hdr_plain, *hdr_batch;
    uint64_t rng;
    char boundary[64], changeset[64];
    /* results */
    struct lat req_lat, op_lat;
    long ops, reqs, rows, pages, curl_err, http_err, batch_err, connects, bad_rows, printed;
    long status_hist[600];
};

static size_t body_cb(char *p, size_t s, size_t n, void *u)
{
    struct slot *sl = u;
    sb_add(&sl->body, p, s * n);
    return s * n;
}

static void hdr_value(const char *p, size_t len, size_t namelen, char *out, size_t outsz)
{
    const char *v = p + namelen;
    size_t vl = len - namelen;
    while (vl && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= outsz)
        vl = outsz - 1;
    memcpy(out, v, vl);
    out[vl] = 0;
}

static size_t header_cb(char *p, size_t s, size_t n, void *u)
{
    struct slot *sl = u;
    size_t len = s * n;
    static const char npk[] = "x-ms-continuation-NextPartitionKey:";
    static const char nrk[] = "x-ms-continuation-NextRowKey:";
    if (len > sizeof npk - 1 && strncasecmp(p, npk, sizeof npk - 1) == 0)
        hdr_value(p, len, sizeof npk - 1, sl->npk, sizeof sl->npk);
    else if (len > sizeof nrk - 1 && strncasecmp(p, nrk, sizeof nrk - 1) == 0)
        hdr_value(p, len, sizeof nrk - 1, sl->nrk, sizeof sl->nrk);
    return len;
}

/* Count the entities in a JSON query response: every entity has a RowKey
 * (no $select is used). */
static long count_rows(const char *body)
{
    long n = 0;
    for (const char *p = body; p && (p = strstr(p, "\"RowKey\":")); p += 9)
        n++;
    return n;
}

/* Prepare the next request of the slot's current op: the first one when
 * first is set (new random target), else the next page. */
static void prep(struct tstate *ts, struct slot *sl, int first)
{
    const struct cfg *c = ts->cfg;
    CURL *e = sl->easy;
    sl->body.len = 0;
    if (sl->body.p)
        sl->body.p[0] = 0;
    sl->npk[0] = sl->nrk[0] = 0;
    long p = (long)(xorshift(&ts->rng) % (uint64_t)c->partitions);
    switch (c->mode) {
    case MODE_INSERT: {
        char pk[32], rk[32];
        snprintf(pk, sizeof pk, "p%d", sl->gid);
        snprintf(rk, sizeof rk, "%010ld", sl->counter++);
        sl->req.len = 0;
        entity_json(&sl->req, pk, rk, sl->counter);
        snprintf(sl->url, sizeof sl->url, "%s/%s?%s", c->base, c->table, c->sas);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, sl->req.p);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)sl->req.len);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, ts->hdr_insert);
        break;
    }
    case MODE_PRELOAD: {
        sl->req.len = 0;
        batch_body(&sl->req, c->base, c->table, sl->part, c->rows_per, ts->boundary, ts->changeset);
        snprintf(sl->url, sizeof sl->url, "%s/$batch?%s", c->base, c->sas);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, sl->req.p);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)sl->req.len);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, ts->hdr_batch);
        break;
    }
    case MODE_GET: {
        char rk[32];
        row_key(rk, sizeof rk, (long)(xorshift(&ts->rng) % (uint64_t)c->rows_per));
        snprintf(sl->url, sizeof sl->url, "%s/%s(PartitionKey='p%05ld',RowKey='%s')?%s", c->base,
                 c->table, p, rk, c->sas);
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, ts->hdr_plain);
        break;
    }
    case MODE_PKQUERY:
    case MODE_RANGE:
    case MODE_SCAN: {
        if (first) {
            char f[256];
            if (c->mode == MODE_PKQUERY)
                snprintf(f, sizeof f, "PartitionKey eq 'p%05ld'", p);
            else if (c->mode == MODE_RANGE)
                snprintf(f, sizeof f, "PartitionKey eq 'p%05ld' and RowKey ge 'a' and RowKey lt 'b'", p);
            else
                snprintf(f, sizeof f, "IntProp eq %ld",
                         (long)(xorshift(&ts->rng) % (uint64_t)(c->partitions * c->rows_per)));
            urlencode(f, strlen(f), sl->filter, sizeof sl->filter);
            snprintf(sl->url, sizeof sl->url, "%s/%s()?$filter=%s&%s", c->base, c->table, sl->filter,
                     c->sas);
        }
        /* else: the caller built the continuation URL */
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, ts->hdr_plain);
        break;
    }
    }
    curl_easy_setopt(e, CURLOPT_URL, sl->url);
}

/* May a new op start now? With --total this claims the op's number. */
static int may_start(struct tstate *ts, struct slot *sl)
{
    struct shared *sh = ts->sh;
    const struct cfg *c = ts->cfg;
    if (atomic_load(&sh->stop))
        return 0;
    if (c->total > 0) {
        long k = atomic_fetch_add(&sh->issued, 1);
        sl->part = k;
        return k < c->total;
    }
    double t = now_s();
    if (t < sh->t_end)
        return 1;
    return c->min_ops > 0 && atomic_load(&sh->measured) < c->min_ops;
}

static void start_op(struct tstate *ts, struct slot *sl)
{
    const struct cfg *c = ts->cfg;
    sl->t_op = now_ns();
    sl->pages = sl->rows = 0;
    double t = (double)sl->t_op * 1e-9;
    sl->op_measured = c->total > 0 || t >= ts->sh->t_start;
    if (sl->op_measured && c->min_ops > 0)
        atomic_fetch_add(&ts->sh->measured, 1);
    prep(ts, sl, 1);
}

/* Is a request or op that started at t0 and ended at t1 inside the window? */
static int counted(struct tstate *ts, uint64_t t0, uint64_t t1)
{
    const struct cfg *c = ts->cfg;
    if (c->total > 0)
        return 1;
    double a = (double)t0 * 1e-9, b = (double)t1 * 1e-9;
    if (a < ts->sh->t_start)
        return 0;
    return c->min_ops > 0 || b <= ts->sh->t_end;
}

/* Handle one finished transfer; returns 1 if the slot got a new request. */
static int on_done(struct tstate *ts, struct slot *sl, CURLcode rc)
{
    const struct cfg *c = ts->cfg;
    uint64_t t = now_ns();
    long st = 0, nc = 0;
    curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_getinfo(sl->easy, CURLINFO_NUM_CONNECTS, &nc);
    int ok = rc == CURLE_OK && st >= 200 && st < 300;
    ts->connects += nc;
    int win = counted(ts, sl->t_req, t);
    if (win) {
        ts->reqs++;
        if (rc != CURLE_OK)
            ts->curl_err++;
        else if (st >= 100 && st < 600) {
            ts->status_hist[st]++;
            if (!ok)
                ts->http_err++;
        }
        if (ok)
            lat_push(&ts->req_lat, t - sl->t_req);
    }
    if (!ok && rc == CURLE_OK && st >= 400 && ts->printed++ < 3)
        fprintf(stderr, "tloadgen: HTTP %ld for %.200s: %.300s\n", st, sl->url,
                sl->body.p ? sl->body.p : "");
    if (ok) {
        sl->pages++;
        if (c->mode == MODE_PKQUERY || c->mode == MODE_RANGE || c->mode == MODE_SCAN) {
            sl->rows += count_rows(sl->body.p);
            if (sl->npk[0]) { /* next page of the same op */
                char a[1024], b[1024];
                urlencode(sl->npk, strlen(sl->npk), a, sizeof a);
                urlencode(sl->nrk, strlen(sl->nrk), b, sizeof b);
                snprintf(sl->url, sizeof sl->url, "%s/%s()?$filter=%s&NextPartitionKey=%s&NextRowKey=%s&%s",
                         c->base, c->table, sl->filter, a, b, c->sas);
                prep(ts, sl, 0);
                return 1;
            }
        } else if (c->mode == MODE_GET) {
            sl->rows = 1;
        } else if (c->mode == MODE_PRELOAD) {
            sl->rows = c->rows_per;
            if (!sl->body.p || strstr(sl->body.p, "HTTP/1.1 4") || strstr(sl->body.p, "HTTP/1.1 5")) {
                if (ts->batch_err++ < 3)
                    fprintf(stderr, "tloadgen: batch failed: %.400s\n", sl->body.p ? sl->body.p : "");
                ok = 0;
            }
        } else {
            sl->rows = 1;
        }
        if (ok && sl->op_measured && counted(ts, sl->t_op, t)) {
            ts->ops++;
            ts->pages += sl->pages;
            ts->rows += sl->rows;
            lat_push(&ts->op_lat, t - sl->t_op);
            long want = c->mode == MODE_PKQUERY ? c->rows_per
                      : c->mode == MODE_RANGE   ? (c->rows_per + 3) / 4
                      : -1;
            if (c->mode == MODE_SCAN || c->mode == MODE_GET)
                want = 1;
            if (want >= 0 && sl->rows != want)
                ts->bad_rows++;
        }
    }
    if (!may_start(ts, sl))
        return 0;
    start_op(ts, sl);
    return 1;
}

static void run_phase(struct tstate *ts)
{
    int active = 0;
    for (int i = 0; i < ts->nslots; i++) {
        struct slot *sl = &ts->slots[i];
        if (!may_start(ts, sl))
            break;
        start_op(ts, sl);
        sl->t_req = now_ns();
        curl_multi_add_handle(ts->multi, sl->easy);
        active++;
    }
    while (active > 0) {
        int running = 0;
        curl_multi_perform(ts->multi, &running);
        CURLMsg *m;
        int q;
        while ((m = curl_multi_info_read(ts->multi, &q))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            struct slot *sl;
            CURL *e = m->easy_handle;
            CURLcode rc = m->data.result;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&sl);
            curl_multi_remove_handle(ts->multi, e);
            if (on_done(ts, sl, rc)) {
                sl->t_req = now_ns();
                curl_multi_add_handle(ts->multi, e);
            } else {
                active--;
            }
        }
        if (active > 0)
            curl_multi_poll(ts->multi, NULL, 0, 50, NULL);
    }
}

static void *worker(void *arg)
{
    struct tstate *ts = arg;
    ts->multi = curl_multi_init();
    curl_multi_setopt(ts->multi, CURLMOPT_MAXCONNECTS, (long)ts->nslots);
    curl_multi_setopt(ts->multi, CURLMOPT_PIPELINING, CURLPIPE_NOTHING);
    ts->hdr_insert = std_headers("application/json;odata=nometadata", 1);
    ts->hdr_plain = std_headers(NULL, 0);
    snprintf(ts->boundary, sizeof ts->boundary, "batch_%016llx", (unsigned long long)xorshift(&ts->rng));
    snprintf(ts->changeset, sizeof ts->changeset, "changeset_%016llx",
             (unsigned long long)xorshift(&ts->rng));
    char ct[160];
    snprintf(ct, sizeof ct, "multipart/mixed; boundary=%s", ts->boundary);
    ts->hdr_batch = std_headers(ct, 0);
    for (int i = 0; i < ts->nslots; i++) {
        struct slot *sl = &ts->slots[i];
        sl->gid = ts->first_gid + i;
        sl->easy = curl_easy_init();
        curl_easy_setopt(sl->easy, CURLOPT_PRIVATE, sl);
        curl_easy_setopt(sl->easy, CURLOPT_WRITEFUNCTION, body_cb);
        curl_easy_setopt(sl->easy, CURLOPT_WRITEDATA, sl);
        curl_easy_setopt(sl->easy, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(sl->easy, CURLOPT_HEADERDATA, sl);
        curl_easy_setopt(sl->easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(sl->easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(sl->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(sl->easy, CURLOPT_TIMEOUT_MS, 600000L);
    }
    run_phase(ts);
    for (int i = 0; i < ts->nslots; i++) {
        curl_easy_cleanup(ts->slots[i].easy);
        free(ts->slots[i].body.p);
        free(ts->slots[i].req.p);
    }
    curl_multi_cleanup(ts->multi);
    curl_slist_free_all(ts->hdr_insert);
    curl_slist_free_all(ts->hdr_plain);
    curl_slist_free_all(ts->hdr_batch);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(struct lat *l, double p)
{
    if (l->n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(l->n - 1) + 0.5);
    return l->v[i] / 10.0;
}

static long rss_kb(long pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* CPU seconds used by the whole machine (from /proc/stat) and by one process. */
static double machine_busy_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 8)
        return 0;
    /* user nice system [idle iowait] irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static double proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

struct sampler {
    long pid;
    atomic_int stop;
    long max_kb;
};

static void *sampler_main(void *arg)
{
    struct sampler *sm = arg;
    while (!atomic_load(&sm->stop)) {
        long r = rss_kb(sm->pid, "VmRSS");
        if (r > sm->max_kb)
            sm->max_kb = r;
        usleep(100000);
    }
    return NULL;
}

static int cmd_run(struct cfg *c, long rss_pid)
{
    if (c->mode == MODE_PRELOAD)
        c->total = c->partitions;
    if (c->threads < 1)
        c->threads = 1;
    if (c->threads > c->conns)
        c->threads = c->conns;
    struct shared sh;
    memset(&sh, 0, sizeof sh);
    struct tstate *ts = calloc((size_t)c->threads, sizeof *ts);
    if (!ts)
        die("oom");
    struct sampler sm = {.pid = rss_pid, .max_kb = -1};
    pthread_t sm_tid;
    if (rss_pid > 0)
        pthread_create(&sm_tid, NULL, sampler_main, &sm);

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double busy0 = machine_busy_s(), srv0 = rss_pid > 0 ? proc_cpu_s(rss_pid) : 0;
    double t0 = now_s();
    sh.t_start = c->total > 0 ? t0 : t0 + c->warmup;
    sh.t_end = c->total > 0 ? 1e18 : sh.t_start + c->duration;
    int gid = 0;
    for (int i = 0; i < c->threads; i++) {
        ts[i].cfg = c;
        ts[i].sh = &sh;
        ts[i].rng = c->seed * 0x9E3779B97F4A7C15ull + (uint64_t)i * 7919 + 1;
        ts[i].nslots = c->conns / c->threads + (i < c->conns % c->threads);
        ts[i].first_gid = gid;
        gid += ts[i].nslots;
        ts[i].slots = calloc((size_t)ts[i].nslots, sizeof(struct slot));
        if (!ts[i].slots)
            die("oom");
        pthread_create(&ts[i].tid, NULL, worker, &ts[i]);
    }
    for (int i = 0; i < c->threads; i++)
        pthread_join(ts[i].tid, NULL);
    double t_fin = now_s();
    getrusage(RUSAGE_SELF, &ru1);
    double busy1 = machine_busy_s(), srv1 = rss_pid > 0 ? proc_cpu_s(rss_pid) : 0;
    if (rss_pid > 0) {
        atomic_store(&sm.stop, 1);
        pthread_join(sm_tid, NULL);
    }
    double secs;
    if (c->total > 0 || c->min_ops > 0)
        secs = t_fin - sh.t_start; /* until the last counted op ended */
    else
        secs = c->duration;

    struct lat req = {0}, op = {0};
    long ops = 0, reqs = 0, rows = 0, pages = 0, cerr = 0, herr = 0, berr = 0, connects = 0, bad = 0;
    long hist[600] = {0};
    for (int i = 0; i < c->threads; i++) {
        struct tstate *t = &ts[i];
        ops += t->ops;
        reqs += t->reqs;
        rows += t->rows;
        pages += t->pages;
        cerr += t->curl_err;
        herr += t->http_err;
        berr += t->batch_err;
        bad += t->bad_rows;
        connects += t->connects;
        for (int k = 0; k < 600; k++)
            hist[k] += t->status_hist[k];
        for (size_t k = 0; k < t->req_lat.n; k++)
            lat_add(&req, t->req_lat.v[k]);
        for (size_t k = 0; k < t->op_lat.n; k++)
            lat_add(&op, t->op_lat.v[k]);
        free(t->req_lat.v);
        free(t->op_lat.v);
        free(t->slots);
    }
    qsort(req.v, req.n, sizeof *req.v, cmp_u32);
    qsort(op.v, op.n, sizeof *op.v, cmp_u32);
    if (secs <= 0)
        secs = 1e-9;
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) * 1e-6 +
                 (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                 (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) * 1e-6;
    double others = (busy1 - busy0) - (srv1 - srv0) - cpu;
    if (others < 0)
        others = 0;
    char statuses[512] = "";
    size_t so = 0;
    for (int k = 100; k < 600; k++)
        if (hist[k] && so < sizeof statuses - 32)
            so += (size_t)snprintf(statuses + so, sizeof statuses - so, "%s%d:%ld", so ? "," : "", k,
                                   hist[k]);
    double wall = t_fin - t0;
    printf("mode=%s conns=%d threads=%d secs=%.3f ops=%ld ops_s=%.1f reqs=%ld req_s=%.1f "
           "rows_per_op=%.2f pages_per_op=%.2f rows_s=%.1f "
           "req_p50_us=%.1f req_p99_us=%.1f op_p50_us=%.1f op_p90_us=%.1f op_p99_us=%.1f "
           "op_p999_us=%.1f op_max_us=%.1f errors=%ld curl_errors=%ld http_errors=%ld batch_errors=%ld "
           "bad_rows=%ld statuses=%s connects=%ld loadgen_cpu_pct=%.0f server_cpu_pct=%.0f "
           "others_cpu_pct=%.0f server_rss_max_kb=%ld\n",
           mode_names[c->mode], c->conns, c->threads, secs, ops, ops / secs, reqs, reqs / secs,
           ops ? (double)rows / ops : 0, ops ? (double)pages / ops : 0, rows / secs,
           pct_us(&req, 0.50), pct_us(&req, 0.99), pct_us(&op, 0.50), pct_us(&op, 0.90),
           pct_us(&op, 0.99), pct_us(&op, 0.999), pct_us(&op, 1.0), cerr + herr + berr, cerr, herr,
           berr, bad, so ? statuses : "-", connects, 100.0 * cpu / wall, 100.0 * (srv1 - srv0) / wall,
           100.0 * others / wall, sm.max_kb);
    free(req.v);
    free(op.v);
    free(ts);
    return (ops > 0 && cerr + herr + berr == 0) ? 0 : 1;
}

/* ---------- startwait ---------- */

static int try_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int cmd_startwait(int port, const char *pidfile, const char *logfile, char **argv)
{
    if (try_connect(port))
        die("port already in use before start");
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0)
        die("fork failed");
    if (pid == 0) {
        setsid(); /* own process group, so run.sh can stop the server and any children */
        int fd = open(logfile ? logfile : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) {
            dup2(nul, 0);
            close(nul);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    FILE *pf = fopen(pidfile, "w");
    if (pf) {
        fprintf(pf, "%ld\n", (long)pid);
        fclose(pf);
    }
    for (;;) {
        if (try_connect(port))
            break;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "tloadgen: server exited before listening (status %d)\n", status);
            return 1;
        }
        if (now_ns() - t0 > 60ull * 1000000000ull) {
            fprintf(stderr, "tloadgen: server did not listen on %d within 60 s\n", port);
            return 1;
        }
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    double ms = (double)(now_ns() - t0) / 1e6;
    printf("startup_ms=%.2f pid=%ld\n", ms, (long)pid);
    return 0;
}

/* ---------- main ---------- */

static void usage(void)
{
    fprintf(stderr, "usage: tloadgen sas|mktable|rmtable|run|startwait [options] (see loadgen.c)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    struct cfg c = {0};
    c.conns = 1;
    c.threads = 1;
    c.duration = 10;
    c.warmup = 2;
    c.partitions = 1000;
    c.rows_per = 100;
    c.seed = (uint64_t)getpid();
    c.mode = MODE_GET;
    const char *key = NULL, *account = "devstoreaccount1", *pidfile = NULL, *logfile = NULL;
    long rss_pid = -1;
    int port = 0;
    char **rest = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            rest = &argv[i + 1];
            break;
        }
        if (!v)
            usage();
        if (!strcmp(a, "--base")) c.base = v;
        else if (!strcmp(a, "--table")) c.table = v;
        else if (!strcmp(a, "--sas")) c.sas = v;
        else if (!strcmp(a, "--key")) key = v;
        else if (!strcmp(a, "--account")) account = v;
        else if (!strcmp(a, "--mode")) {
            int found = 0;
            for (int m = 0; m <= MODE_PRELOAD; m++)
                if (!strcmp(v, mode_names[m])) {
                    c.mode = (enum mode)m;
                    found = 1;
                }
            if (!found)
                usage();
        }
        else if (!strcmp(a, "--conns")) c.conns = (int)parse_long(v, a);
        else if (!strcmp(a, "--threads")) c.threads = (int)parse_long(v, a);
        else if (!strcmp(a, "--duration")) c.duration = parse_double(v, a);
        else if (!strcmp(a, "--warmup")) c.warmup = parse_double(v, a);
        else if (!strcmp(a, "--min-ops")) c.min_ops = parse_long(v, a);
        else if (!strcmp(a, "--total")) c.total = parse_long(v, a);
        else if (!strcmp(a, "--partitions")) c.partitions = parse_long(v, a);
        else if (!strcmp(a, "--rows-per")) c.rows_per = parse_long(v, a);
        else if (!strcmp(a, "--seed")) c.seed = (uint64_t)parse_long(v, a);
        else if (!strcmp(a, "--rss-pid")) rss_pid = parse_long(v, a);
        else if (!strcmp(a, "--port")) port = (int)parse_long(v, a);
        else if (!strcmp(a, "--pidfile")) pidfile = v;
        else if (!strcmp(a, "--log")) logfile = v;
        else usage();
        i++;
    }
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(cmd, "sas")) {
        if (!key)
            usage();
        return cmd_sas(key, account);
    }
    if (!strcmp(cmd, "startwait")) {
        if (!port || !pidfile || !rest || !rest[0])
            usage();
        return cmd_startwait(port, pidfile, logfile, rest);
    }
    if (!c.base || !c.table || !c.sas)
        usage();
    if (c.conns < 1 || c.partitions < 1 || c.rows_per < 1 || c.rows_per > 9999 ||
        (c.mode == MODE_PRELOAD && c.rows_per > 100))
        usage();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (!strcmp(cmd, "mktable")) rc = cmd_table(1, c.base, c.table, c.sas);
    else if (!strcmp(cmd, "rmtable")) rc = cmd_table(0, c.base, c.table, c.sas);
    else if (!strcmp(cmd, "run")) rc = cmd_run(&c, rss_pid);
    else usage();
    curl_global_cleanup();
    return rc;
}
