/* loadgen: a small closed-loop HTTP load generator for the Azure Queue REST API.
 * Owns only benchmark-side state; speaks to any server (Nimbus, Azurite) through
 * pre-signed account-SAS URLs. Invariant: every in-flight request belongs to one
 * slot, and each slot has exactly one request in flight at a time, so
 * "--conns N" means N keep-alive connections with N requests in flight.
 *
 * Subcommands (all print one "key=value ..." line on stdout):
 *   sas       --key B64 [--account A]            print an account SAS query (ss=q srt=sco sp=rwdlacup)
 *   create    --base URL --queue Q --sas S       PUT the queue (201/204 ok)
 *   delete    --base URL --queue Q --sas S       DELETE the queue
 *   count     --base URL --queue Q --sas S       approximate message count
 *   run       --base URL --queue Q --sas S --mode put|getdel [--conns N] [--threads T]
 *             [--duration S] [--warmup S] [--total N] [--size BYTES] [--rss-pid PID]
 *             [--backlog N]
 *             --total N: no warm-up, stop after N ops started (or after --duration S if given)
 *             --backlog N (getdel): repeat "put N (unmeasured), get+delete N (measured)";
 *               the first cycle is warm-up; stops after --duration S of measured drains
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
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define API_VERSION "2021-02-12"

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
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
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
        fprintf(stderr, "loadgen: bad %s: %s\n", what, s);
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
        fprintf(stderr, "loadgen: bad %s: %s\n", what, s);
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

/* ---------- account SAS (storage-queue-table.md 1.5, sv >= 2020-12-06) ---------- */

static int cmd_sas(const char *key_b64, const char *account)
{
    unsigned char key[128];
    int klen = EVP_DecodeBlock(key, (const unsigned char *)key_b64, (int)strlen(key_b64));
    if (klen <= 0)
        die("bad base64 key");
    /* EVP_DecodeBlock counts '=' padding bytes as output; strip them. */
    size_t kl = strlen(key_b64);
    while (kl > 0 && key_b64[kl - 1] == '=') {
        klen--;
        kl--;
    }
    const char *sp = "rwdlacup", *ss = "q", *srt = "sco", *se = "2099-01-01T00:00:00Z";
    char sts[512];
    /* account\nsp\nss\nsrt\nst\nse\nsip\nspr\nsv\nses\n */
    int n = snprintf(sts, sizeof sts, "%s\n%s\n%s\n%s\n\n%s\n\n\n%s\n\n", account, sp, ss, srt, se,
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

/* ---------- one-shot requests: create, count ---------- */

struct hdrcap {
    long count;
};

static size_t discard_cb(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static size_t count_hdr_cb(char *p, size_t s, size_t n, void *u)
{
    struct hdrcap *h = u;
    size_t len = s * n;
    static const char name[] = "x-ms-approximate-messages-count:";
    if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        char tmp[64];
        size_t vl = len - (sizeof name - 1);
        if (vl >= sizeof tmp)
            vl = sizeof tmp - 1;
        memcpy(tmp, p + sizeof name - 1, vl);
        tmp[vl] = 0;
        h->count = strtol(tmp, NULL, 10);
    }
    return len;
}

static struct curl_slist *std_headers(int with_ct)
{
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "x-ms-version: " API_VERSION);
    h = curl_slist_append(h, "Expect:"); /* never wait for 100-continue */
    if (with_ct)
        h = curl_slist_append(h, "Content-Type: application/xml");
    return h;
}

static int cmd_queue(const char *method, const char *base, const char *queue, const char *sas)
{
    char url[4096];
    snprintf(url, sizeof url, "%s/%s?%s", base, queue, sas);
    CURL *c = curl_easy_init();
    struct curl_slist *h = std_headers(0);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "PUT")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 600000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
    CURLcode rc = curl_easy_perform(c);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    printf("%s status=%ld curl=%d\n", method, st, (int)rc);
    return (rc == CURLE_OK && st >= 200 && st < 300) ? 0 : 1;
}

static int cmd_count(const char *base, const char *queue, const char *sas)
{
    char url[4096];
    snprintf(url, sizeof url, "%s/%s?comp=metadata&%s", base, queue, sas);
    CURL *c = curl_easy_init();
    struct curl_slist *h = std_headers(0);
    struct hdrcap cap = {-1};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, count_hdr_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &cap);
    CURLcode rc = curl_easy_perform(c);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    printf("count=%ld status=%ld\n", cap.count, st);
    return (rc == CURLE_OK && st == 200 && cap.count >= 0) ? 0 : 1;
}

/* ---------- the load loop ---------- */

enum mode { MODE_PUT, MODE_GETDEL };
enum step { STEP_PUT, STEP_GET, STEP_DEL };

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
    const char *base, *queue, *sas;
    enum mode mode;
    int conns, threads;
    double duration, warmup;
    long total;   /* >0: stop after this many ops, no warm-up */
    long backlog; /* >0 (getdel): cycles of "put N, then get+delete N", drains measured */
    int size;
    char *put_body;
    size_t put_body_len;
};

/* One phase of work, set by the main thread between two barriers. */
struct phase {
    enum mode mode;
    long total;            /* >0: stop after this many ops started */
    double t_start, t_end; /* window (monotonic s); with total, t_end is only a cap */
    int measure;           /* record results of this phase */
};

struct shared {
    struct phase ph;
    atomic_long issued;
    atomic_int stop;
    int quit;
    pthread_barrier_t go, done;
};

struct slot {
    CURL *easy;
    enum step step;
    uint64_t t_req, t_op; /* start of current request / of current op */
    char *body;
    size_t blen, bcap;
    char url[4096];
};

struct tstate {
    pthread_t tid;
    const struct cfg *cfg;
    struct shared *sh;
    int nslots;
    struct slot *slots;
    CURLM *multi;
    struct curl_slist *hdr_put, *hdr_plain;
    /* results, counted only in measured phases (and inside the window) */
    struct lat req_lat, op_lat;
    long ops, reqs, empty, curl_err, http_err[6], connects;
    long status_hist[600];
};

static size_t body_cb(char *p, size_t s, size_t n, void *u)
{
    struct slot *sl = u;
    size_t len = s * n;
    if (sl->blen + len + 1 > sl->bcap) {
        sl->bcap = (sl->blen + len + 1) * 2;
        sl->body = xrealloc(sl->body, sl->bcap);
    }
    memcpy(sl->body + sl->blen, p, len);
    sl->blen += len;
    sl->body[sl->blen] = 0;
    return len;
}

/* Extract the text between <tag> and </tag>; returns length or -1. */
static int xml_field(const char *doc, const char *tag, char *out, size_t outsz)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = doc ? strstr(doc, open) : NULL;
    if (!a)
        return -1;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b || (size_t)(b - a) >= outsz)
        return -1;
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = 0;
    return (int)(b - a);
}

static void prep(struct tstate *ts, struct slot *sl, enum step step)
{
    const struct cfg *c = ts->cfg;
    CURL *e = sl->easy;
    sl->step = step;
    sl->blen = 0;
    if (sl->body)
        sl->body[0] = 0;
    if (step == STEP_PUT) {
        snprintf(sl->url, sizeof sl->url, "%s/%s/messages?%s", c->base, c->queue, c->sas);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->put_body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)c->put_body_len);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, ts->hdr_put);
    } else if (step == STEP_GET) {
        snprintf(sl->url, sizeof sl->url, "%s/%s/messages?numofmessages=1&visibilitytimeout=30&%s",
                 c->base, c->queue, c->sas);
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, ts->hdr_plain);
    } else { /* STEP_DEL: url already built by the caller */
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, ts->hdr_plain);
    }
    curl_easy_setopt(e, CURLOPT_URL, sl->url);
}

/* Decide whether a new op may start now (window end, or --total). */
static int may_start(struct tstate *ts)
{
    struct shared *sh = ts->sh;
    if (atomic_load(&sh->stop))
        return 0;
    if (sh->ph.total > 0 && atomic_fetch_add(&sh->issued, 1) >= sh->ph.total) {
        atomic_store(&sh->stop, 1);
        return 0;
    }
    return now_s() < sh->ph.t_end;
}

static void start_op(struct tstate *ts, struct slot *sl)
{
    sl->t_op = now_ns();
    prep(ts, sl, ts->sh->ph.mode == MODE_PUT ? STEP_PUT : STEP_GET);
}

static int in_window(struct tstate *ts, uint64_t t_ns)
{
    const struct phase *ph = &ts->sh->ph;
    if (!ph->measure)
        return 0;
    if (ph->total > 0)
        return 1;
    double t = (double)t_ns * 1e-9;
    return t >= ph->t_start && t <= ph->t_end;
}

/* Handle one finished transfer; returns 1 if the slot got a new request. */
static int on_done(struct tstate *ts, struct slot *sl, CURLcode rc)
{
    uint64_t t = now_ns();
    int win = in_window(ts, t);
    long st = 0, nc = 0;
    curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_getinfo(sl->easy, CURLINFO_NUM_CONNECTS, &nc);
    int ok = rc == CURLE_OK && st >= 200 && st < 300;
    ts->connects += nc; /* new TCP connections this transfer had to open (any phase) */
    if (win) {
        ts->reqs++;
        if (rc != CURLE_OK)
            ts->curl_err++;
        else if (st >= 100 && st < 600) {
            ts->status_hist[st]++;
            if (!ok)
                ts->http_err[st / 100]++;
        }
        if (ok)
            lat_push(&ts->req_lat, t - sl->t_req);
    }
    if (sl->step == STEP_GET && ok) {
        char id[256], pop[512], pop_enc[1024];
        if (xml_field(sl->body, "MessageId", id, sizeof id) > 0 &&
            xml_field(sl->body, "PopReceipt", pop, sizeof pop) > 0) {
            urlencode(pop, strlen(pop), pop_enc, sizeof pop_enc);
            snprintf(sl->url, sizeof sl->url, "%s/%s/messages/%s?popreceipt=%s&%s", ts->cfg->base,
                     ts->cfg->queue, id, pop_enc, ts->cfg->sas);
            prep(ts, sl, STEP_DEL);
            return 1; /* the delete belongs to the same op, even past t_end */
        }
        if (win)
            ts->empty++; /* queue drained: no op, try again */
    } else if (ok && win) { /* put done, or delete done */
        ts->ops++;
        lat_push(&ts->op_lat, t - sl->t_op);
    }
    if (!may_start(ts))
        return 0;
    start_op(ts, sl);
    return 1;
}

static void run_phase(struct tstate *ts)
{
    int active = 0;
    for (int i = 0; i < ts->nslots; i++) {
        struct slot *sl = &ts->slots[i];
        if (!may_start(ts))
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

/* A worker keeps its connections for its whole life and runs one phase per
 * pair of barriers, so fill/drain cycles do not reconnect. */
static void *worker(void *arg)
{
    struct tstate *ts = arg;
    ts->multi = curl_multi_init();
    curl_multi_setopt(ts->multi, CURLMOPT_MAXCONNECTS, (long)ts->nslots);
    curl_multi_setopt(ts->multi, CURLMOPT_PIPELINING, CURLPIPE_NOTHING);
    ts->hdr_put = std_headers(1);
    ts->hdr_plain = std_headers(0);
    for (int i = 0; i < ts->nslots; i++) {
        struct slot *sl = &ts->slots[i];
        sl->easy = curl_easy_init();
        curl_easy_setopt(sl->easy, CURLOPT_PRIVATE, sl);
        curl_easy_setopt(sl->easy, CURLOPT_WRITEFUNCTION, body_cb);
        curl_easy_setopt(sl->easy, CURLOPT_WRITEDATA, sl);
        curl_easy_setopt(sl->easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(sl->easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(sl->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(sl->easy, CURLOPT_TIMEOUT_MS, 30000L);
    }
    for (;;) {
        pthread_barrier_wait(&ts->sh->go);
        if (ts->sh->quit)
            break;
        run_phase(ts);
        pthread_barrier_wait(&ts->sh->done);
    }
    for (int i = 0; i < ts->nslots; i++) {
        curl_easy_cleanup(ts->slots[i].easy);
        free(ts->slots[i].body);
    }
    curl_multi_cleanup(ts->multi);
    curl_slist_free_all(ts->hdr_put);
    curl_slist_free_all(ts->hdr_plain);
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
    char *p = strrchr(buf, ')'); /* comm may contain spaces */
    if (!p)
        return 0;
    unsigned long long ut = 0, st = 0;
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

struct sampler {
    long pid;
    atomic_int stop;
    long max_kb;
};

/* Sample the server's VmRSS every 100 ms while the load runs. */
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

/* Run one phase on every worker; returns its wall time in seconds. */
static double phase(struct shared *sh, enum mode mode, long total, double warmup, double duration,
                    int measure)
{
    double t0 = now_s();
    sh->ph.mode = mode;
    sh->ph.total = total;
    sh->ph.measure = measure;
    sh->ph.t_start = t0 + warmup;
    sh->ph.t_end = sh->ph.t_start + duration;
    atomic_store(&sh->issued, 0);
    atomic_store(&sh->stop, 0);
    pthread_barrier_wait(&sh->go);
    pthread_barrier_wait(&sh->done);
    return now_s() - t0;
}

static int cmd_run(struct cfg *c, long rss_pid, int duration_given)
{
    if (c->threads < 1)
        c->threads = 1;
    if (c->threads > c->conns)
        c->threads = c->conns;
    /* 1 KiB (by default) of message text, in the exact body shape the Python SDK sends. */
    static const char pre[] = "<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>";
    static const char post[] = "</MessageText></QueueMessage>";
    c->put_body_len = strlen(pre) + (size_t)c->size + strlen(post);
    c->put_body = xmalloc(c->put_body_len + 1);
    memcpy(c->put_body, pre, strlen(pre));
    for (int i = 0; i < c->size; i++)
        c->put_body[strlen(pre) + (size_t)i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36];
    memcpy(c->put_body + strlen(pre) + c->size, post, strlen(post) + 1);

    struct shared sh;
    memset(&sh, 0, sizeof sh);
    pthread_barrier_init(&sh.go, NULL, (unsigned)c->threads + 1);
    pthread_barrier_init(&sh.done, NULL, (unsigned)c->threads + 1);
    struct tstate *ts = calloc((size_t)c->threads, sizeof *ts);
    if (!ts)
        die("oom");
    for (int i = 0; i < c->threads; i++) {
        ts[i].cfg = c;
        ts[i].sh = &sh;
        ts[i].nslots = c->conns / c->threads + (i < c->conns % c->threads);
        ts[i].slots = calloc((size_t)ts[i].nslots, sizeof(struct slot));
        if (!ts[i].slots)
            die("oom");
        pthread_create(&ts[i].tid, NULL, worker, &ts[i]);
    }
    struct sampler sm = {.pid = rss_pid, .max_kb = -1};
    pthread_t sm_tid;
    if (rss_pid > 0)
        pthread_create(&sm_tid, NULL, sampler_main, &sm);

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double busy0 = machine_busy_s(), srv0 = rss_pid > 0 ? proc_cpu_s(rss_pid) : 0;
    double t0 = now_s(), secs;
    int cycles = 0;
    if (c->backlog > 0) {
        /* Fixed-depth get+delete: fill the queue with `backlog` messages, drain
         * exactly that many, repeat; only drains are measured, the first is
         * warm-up. Stops once the measured drains add up to --duration. */
        double cap = now_s() + (duration_given ? c->duration * 20 + 60 : 600);
        secs = 0;
        for (int cycle = 0; secs < c->duration && now_s() < cap; cycle++) {
            phase(&sh, MODE_PUT, c->backlog, 0, 1e9, 0);
            double d = phase(&sh, MODE_GETDEL, c->backlog, 0, 1e9, cycle > 0);
            if (cycle > 0) {
                secs += d;
                cycles++;
            }
        }
    } else if (c->total > 0) {
        secs = phase(&sh, c->mode, c->total, 0, duration_given ? c->duration : 1e9, 1);
    } else {
        phase(&sh, c->mode, 0, c->warmup, c->duration, 1);
        secs = c->duration;
    }
    double t_fin = now_s();
    getrusage(RUSAGE_SELF, &ru1);
    double busy1 = machine_busy_s(), srv1 = rss_pid > 0 ? proc_cpu_s(rss_pid) : 0;
    sh.quit = 1;
    pthread_barrier_wait(&sh.go);
    for (int i = 0; i < c->threads; i++)
        pthread_join(ts[i].tid, NULL);
    if (rss_pid > 0) {
        atomic_store(&sm.stop, 1);
        pthread_join(sm_tid, NULL);
    }

    struct lat req = {0}, op = {0};
    long ops = 0, reqs = 0, empty = 0, cerr = 0, herr = 0, connects = 0;
    long hist[600] = {0};
    for (int i = 0; i < c->threads; i++) {
        struct tstate *t = &ts[i];
        ops += t->ops;
        reqs += t->reqs;
        empty += t->empty;
        cerr += t->curl_err;
        connects += t->connects;
        for (int k = 0; k < 6; k++)
            herr += t->http_err[k];
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
    /* CPU the rest of the machine burned meanwhile (other people's jobs), in
     * percent of one core: a noisy neighbour shows up here. */
    double others = (busy1 - busy0) - (srv1 - srv0) - cpu;
    if (others < 0)
        others = 0;
    char statuses[512] = "";
    size_t so = 0;
    for (int k = 100; k < 600; k++)
        if (hist[k] && so < sizeof statuses - 32)
            so += (size_t)snprintf(statuses + so, sizeof statuses - so, "%s%d:%ld", so ? "," : "", k,
                                   hist[k]);
    printf("mode=%s conns=%d threads=%d secs=%.3f ops=%ld ops_s=%.1f reqs=%ld req_s=%.1f "
           "req_p50_us=%.1f req_p90_us=%.1f req_p99_us=%.1f req_p999_us=%.1f req_max_us=%.1f "
           "op_p50_us=%.1f op_p99_us=%.1f errors=%ld curl_errors=%ld http_errors=%ld empty=%ld "
           "statuses=%s connects=%ld backlog=%ld cycles=%d loadgen_cpu_pct=%.0f "
           "server_cpu_pct=%.0f others_cpu_pct=%.0f server_rss_max_kb=%ld\n",
           c->mode == MODE_PUT ? "put" : "getdel", c->conns, c->threads, secs, ops, ops / secs, reqs,
           reqs / secs, pct_us(&req, 0.50), pct_us(&req, 0.90), pct_us(&req, 0.99),
           pct_us(&req, 0.999), pct_us(&req, 1.0), pct_us(&op, 0.50), pct_us(&op, 0.99), cerr + herr,
           cerr, herr, empty, so ? statuses : "-", connects, c->backlog, cycles,
           100.0 * cpu / (t_fin - t0), 100.0 * (srv1 - srv0) / (t_fin - t0),
           100.0 * others / (t_fin - t0), sm.max_kb);
    free(req.v);
    free(op.v);
    free(ts);
    free(c->put_body);
    pthread_barrier_destroy(&sh.go);
    pthread_barrier_destroy(&sh.done);
    return ops > 0 ? 0 : 1;
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
            fprintf(stderr, "loadgen: server exited before listening (status %d)\n", status);
            return 1;
        }
        if (now_ns() - t0 > 60ull * 1000000000ull) {
            fprintf(stderr, "loadgen: server did not listen on %d within 60 s\n", port);
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
    fprintf(stderr, "usage: loadgen sas|create|count|run|startwait [options] (see loadgen.c)\n");
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
    c.size = 1024;
    c.mode = MODE_PUT;
    const char *key = NULL, *account = "devstoreaccount1", *pidfile = NULL, *logfile = NULL;
    long rss_pid = -1;
    int port = 0, duration_given = 0;
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
        else if (!strcmp(a, "--queue")) c.queue = v;
        else if (!strcmp(a, "--sas")) c.sas = v;
        else if (!strcmp(a, "--key")) key = v;
        else if (!strcmp(a, "--account")) account = v;
        else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "put")) c.mode = MODE_PUT;
            else if (!strcmp(v, "getdel")) c.mode = MODE_GETDEL;
            else usage();
        }
        else if (!strcmp(a, "--conns")) c.conns = (int)parse_long(v, a);
        else if (!strcmp(a, "--threads")) c.threads = (int)parse_long(v, a);
        else if (!strcmp(a, "--duration")) { c.duration = parse_double(v, a); duration_given = 1; }
        else if (!strcmp(a, "--warmup")) c.warmup = parse_double(v, a);
        else if (!strcmp(a, "--total")) c.total = parse_long(v, a);
        else if (!strcmp(a, "--backlog")) c.backlog = parse_long(v, a);
        else if (!strcmp(a, "--size")) c.size = (int)parse_long(v, a);
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
    if (!c.base || !c.queue || !c.sas)
        usage();
    if (c.conns < 1 || c.size < 0)
        usage();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (!strcmp(cmd, "create")) rc = cmd_queue("PUT", c.base, c.queue, c.sas);
    else if (!strcmp(cmd, "delete")) rc = cmd_queue("DELETE", c.base, c.queue, c.sas);
    else if (!strcmp(cmd, "count")) rc = cmd_count(c.base, c.queue, c.sas);
    else if (!strcmp(cmd, "run")) rc = cmd_run(&c, rss_pid, duration_given);
    else usage();
    curl_global_cleanup();
    return rc;
}
