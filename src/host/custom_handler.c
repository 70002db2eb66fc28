/* The custom-handler worker (see custom_handler.h). This file owns the
 * handler's child process (spawn, readiness, supervision, restart,
 * termination) and every HTTP exchange with it. It reads the app but never
 * changes it and installs no signal handler: the child is reaped only by
 * waitpid/waitid on its own pid, always under ch->mu, so exactly one place
 * learns of its exit. Invariant: ch->pid is our unreaped child, or -1. */
#include "host/custom_handler.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/encode.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timefmt.h"
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* posix_spawn can change directory from glibc 2.29 and close inherited
 * descriptors from 2.34; older libcs take the fork+exec path below. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29)) && \
    !defined(NB_CH_FORCE_FORK)
#define CH_SPAWN_CHDIR 1
#else
#define CH_SPAWN_CHDIR 0
#endif
#if CH_SPAWN_CHDIR && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
#define CH_SPAWN_CLOSEFROM 1
#else
#define CH_SPAWN_CLOSEFROM 0
#endif

#define CH_BODY_MAX (100u * 1024 * 1024) /* a reply, like a request, is at most 100 MiB */
#define CH_POLL_MS 25                    /* readiness poll interval (as the Azure host) */
#define CH_MONITOR_MS 100                /* how often the monitor looks at the child */
#define CH_STOP_GRACE_MS 2000            /* SIGTERM .. SIGKILL */
#define CH_READY_DEFAULT_MS 60000
#define CH_CONNECT_TIMEOUT_MS 10000
#define CH_POOL_MAX 256                  /* idle easy handles kept (each holds a connection) */
#define CH_SHORT_RUN_MS 10000            /* a handler dying sooner than this backs off */
#define CH_BACKOFF_MAX_MS 30000
#define CH_SNIPPET 200                   /* bytes of a failed reply quoted in the error */
#define CH_CRASH_PROBE_MS 100            /* how long a failed request looks for the child's exit */

enum ch_state {
    CH_DOWN,     /* no usable child; the monitor (re)starts one */
    CH_STARTING, /* spawned, waiting for GET / to answer */
    CH_READY,
};

struct nb_custom_handler {
    const struct nb_app *app;
    char *const *env; /* borrowed from the caller for our lifetime */
    const struct nb_log *log;
    int64_t ready_timeout_ms;
    char *exe;        /* what to spawn */
    bool search_path; /* exe is a bare name found through PATH */
    char *workdir;
    char **argv;      /* executable as configured, arguments, NULL */
    char worker_id[37];
    char *hdr_version; /* "X-Azure-Functions-HostVersion: v" */
    char *ua;          /* "Azure-Functions-Host/v" */

    pthread_mutex_t mu; /* guards everything below up to the pool */
    pthread_cond_t cv;  /* state changes; wakes the monitor */
    enum ch_state state;
    pid_t pid;
    int port;
    unsigned gen;           /* bumped each time a child becomes ready */
    int64_t ready_at_ms;    /* monotonic time the current child became ready */
    int strikes;            /* consecutive short runs / failed starts */
    int64_t next_try_ms;    /* the monitor does not restart before this */
    atomic_bool stopping;   /* written under mu; read lock-free by curl callbacks */
    pthread_t monitor;
    bool monitor_started;

    pthread_mutex_t pool_mu;
    CURL *idle[CH_POOL_MAX];
    size_t nidle;
};

/* --- small helpers -------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    return nb_clock_mono_us() / 1000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void abs_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static const char *err_text(int err, char *buf, size_t n)
{
    return strerror_r(err, buf, n); /* GNU variant under _GNU_SOURCE */
}

static void free_strv(char **v)
{
    for (char **p = v; p && *p; p++) free(*p);
    free(v);
}

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* The value of an object member, matched exactly first and then ignoring
 * case (Newtonsoft binds property names case-insensitively). */
static json_t *get_ci(json_t *obj, const char *key)
{
    if (!json_is_object(obj)) return NULL;
    json_t *v = json_object_get(obj, key);
    if (v) return v;
    const char *k;
    json_object_foreach(obj, k, v) {
        if (strcasecmp(k, key) == 0) return v;
    }
    return NULL;
}

/* The length of the valid UTF-8 sequence at s (n bytes left), 0 when the
 * bytes there are not one (overlong forms and surrogates included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) { len = 3; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else return 0;
    if (len > n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return len;
}

/* Append s[0..n) to b as a JSON string. Bytes that are not UTF-8 become
 * U+FFFD, as .NET's decoder makes them; control characters are escaped. */
static void jw_str(struct nb_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t i = 0, run = 0;
    (void)nb_buf_addc(b, '"');
    while (i < n) {
        unsigned char c = p[i];
        size_t len = 1;
        if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || (len = utf8_len(p + i, n - i)))) {
            i += len;
            continue;
        }
        (void)nb_buf_add(b, p + run, i - run);
        char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            (void)nb_buf_add(b, esc, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            (void)nb_buf_add(b, esc, 2);
        } else if (c < 0x20) {
            (void)nb_buf_add(b, esc, 6);
        } else {
            (void)nb_buf_add(b, "\xEF\xBF\xBD", 3);
        }
        i++;
        run = i;
    }
    (void)nb_buf_add(b, p + run, i - run);
    (void)nb_buf_addc(b, '"');
}

static void jw_cstr(struct nb_buf *b, const char *s)
{
    jw_str(b, s, s ? strlen(s) : 0);
}

/* `"key":` */
static void jw_key(struct nb_buf *b, const char *key)
{
    jw_cstr(b, key);
    (void)nb_buf_addc(b, ':');
}

/* A jansson value as compact JSON text. */
static void jw_json(struct nb_buf *b, const json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!t) {
        fputs("custom handler: out of memory serialising JSON\n", stderr);
        abort();
    }
    (void)nb_buf_adds(b, t);
    free(t);
}

/* JSON text as it is when it parses (any value), else as a string. */
static void jw_json_or_string(struct nb_buf *b, const char *s, size_t n)
{
    if (!s) {
        (void)nb_buf_adds(b, "null");
        return;
    }
    json_t *v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (v) jw_json(b, v);
    else jw_str(b, s, n);
    json_decref(v);
}

/* --- the curl handle pool ------------------------------------------------------------- */

/* Handles are kept after use because each one holds its connection cache:
 * taking a used handle means reusing a kept-alive connection to the
 * handler. curl_easy_reset clears options but keeps the connections. */
static CURL *pool_get(struct nb_custom_handler *ch)
{
    CURL *h = NULL;
    pthread_mutex_lock(&ch->pool_mu);
    if (ch->nidle) h = ch->idle[--ch->nidle];
    pthread_mutex_unlock(&ch->pool_mu);
    if (h) {
        curl_easy_reset(h);
        return h;
    }
    h = curl_easy_init();
    if (!h) {
        nb_log_error(ch->log, "custom handler: curl_easy_init failed (out of memory)");
        abort();
    }
    return h;
}

static void pool_put(struct nb_custom_handler *ch, CURL *h)
{
    pthread_mutex_lock(&ch->pool_mu);
    if (ch->nidle < CH_POOL_MAX) {
        ch->idle[ch->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&ch->pool_mu);
    if (h) curl_easy_cleanup(h);
}

struct sink {
    struct nb_buf *buf; /* NULL: discard */
    bool too_large;
};

static size_t sink_write(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t len = size * n;
    if (!s->buf) return len;
    if (nb_buf_add(s->buf, p, len)) {
        s->too_large = true;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    return len;
}

/* Options every request to the handler shares. The URL always names
 * 127.0.0.1, so there is no name resolution; redirects are not followed
 * (Azure's current forwarding does not either) and no cookie engine is on. */
static void base_opts(CURL *h, const char *url, struct sink *sink, char *errbuf)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never send 127.0.0.1 through $http_proxy */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CH_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    if (errbuf) {
        errbuf[0] = '\0';
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    }
}

/* --- the child process ---------------------------------------------------------------- */

/* Bind 127.0.0.1:port (0 = any) and report the port bound, or -1. The port
 * is released again at once; the handler binds it a moment later. */
static int try_bind(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int got = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        socklen_t len = sizeof(a);
        if (getsockname(fd, (struct sockaddr *)&a, &len) == 0) got = ntohs(a.sin_port);
    }
    close(fd);
    return got;
}

static const char *const own_vars[] = {
    "FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
    "FUNCTIONS_HTTPWORKER_PORT",    "FUNCTIONS_HTTPWORKER_ID",
    "FUNCTIONS_APP_ROOT_PATH",      NULL,
};

static bool is_own_var(const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t n = eq ? (size_t)(eq - entry) : strlen(entry);
    for (size_t i = 0; own_vars[i]; i++)
        if (strlen(own_vars[i]) == n && memcmp(own_vars[i], entry, n) == 0) return true;
    return false;
}

/* cfg->env (or our own environment when none was given) with the five
 * protocol variables set; our values win over same-named entries. */
static char **build_env(const struct nb_custom_handler *ch, int port)
{
    char *const *src = ch->env ? ch->env : environ;
    size_t n = 0;
    while (src[n]) n++;
    char **env = nb_calloc(n + 6, sizeof(*env));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_own_var(src[i])) env[k++] = nb_strdup(src[i]);
    env[k++] = nb_asprintf("FUNCTIONS_CUSTOMHANDLER_PORT=%d", port);
    env[k++] = nb_asprintf("FUNCTIONS_CUSTOMHANDLER_WORKER_ID=%s", ch->worker_id);
    env[k++] = nb_asprintf("FUNCTIONS_HTTPWORKER_PORT=%d", port);
    env[k++] = nb_asprintf("FUNCTIONS_HTTPWORKER_ID=%s", ch->worker_id);
    env[k++] = nb_asprintf("FUNCTIONS_APP_ROOT_PATH=%s", ch->app->root ? ch->app->root : "");
    env[k] = NULL;
    return env;
}

#if !CH_SPAWN_CHDIR
/* A bare name looked up in PATH, in the parent (execvp is not safe to call
 * between fork and exec in a multi-threaded process). */
static char *path_lookup(const char *name)
{
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        char *cand = n ? nb_asprintf("%.*s/%s", (int)n, path, name) : nb_asprintf("./%s", name);
        if (access(cand, X_OK) == 0) return cand;
        free(cand);
        path += n;
        if (*path == ':') path++;
    }
    return nb_strdup(name);
}

/* fork + exec for libcs without posix_spawn_file_actions_addchdir_np. The
 * child runs only async-signal-safe calls: the parent is multi-threaded and
 * another thread may hold the allocator's lock at the moment of fork. An
 * exec failure comes back as errno over a close-on-exec pipe. */
static int fork_exec(const char *path, char *const argv[], char *const envp[], const char *cwd,
                     pid_t *out)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) return errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return e;
    }
    if (pid == 0) {
        close(pfd[0]);
        (void)setpgid(0, 0);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) (void)sigaction(s, &sa, NULL);
        sigset_t none;
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        int fd = open("/dev/null", O_RDONLY);
        if (fd > 0) {
            (void)dup2(fd, 0);
            close(fd);
        }
        int e;
        if (chdir(cwd) != 0) {
            e = errno;
        } else {
            execve(path, argv, envp);
            e = errno;
        }
        ssize_t w = write(pfd[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    close(pfd[1]);
    int e = 0;
    ssize_t n;
    do {
        n = read(pfd[0], &e, sizeof(e));
    } while (n < 0 && errno == EINTR);
    close(pfd[0]);
    if (n == (ssize_t)sizeof(e)) {
        (void)waitpid(pid, NULL, 0);
        return e;
    }
    *out = pid;
    return 0;
}
#endif

/* Start the executable with the protocol environment. The child gets its
 * own process group (so a terminal's Ctrl-C reaches only the host, which
 * then stops it, and so stop/restart can signal helpers it started), an
 * empty signal mask with default dispositions (the host blocks SIGTERM and
 * SIGINT for sigwait and a mask survives exec), stdin from /dev/null, and
 * our stdout/stderr so users see its output. */
static enum nb_err spawn_child(struct nb_custom_handler *ch, int port, pid_t *out)
{
    char **envp = build_env(ch, port);
    pid_t pid = -1;
    int err;
#if CH_SPAWN_CHDIR
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addchdir_np(&fa, ch->workdir);
#if CH_SPAWN_CLOSEFROM
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    if (ch->search_path)
        err = posix_spawnp(&pid, ch->exe, &fa, &at, ch->argv, envp);
    else
        err = posix_spawn(&pid, ch->exe, &fa, &at, ch->argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
#else
    char *path = ch->search_path ? path_lookup(ch->exe) : nb_strdup(ch->exe);
    err = fork_exec(path, ch->argv, envp, ch->workdir, &pid);
    free(path);
#endif
    free_strv(envp);
    if (err) {
        char eb[128];
        nb_log_error(ch->log, "custom handler: cannot start %s (in %s): %s", ch->exe, ch->workdir,
                     err_text(err, eb, sizeof(eb)));
        return NB_ERR_IO;
    }
    *out = pid;
    return NB_OK;
}

/* Under ch->mu. True when the child is gone (reaped now, or earlier). The
 * exit is first observed without reaping (WNOWAIT) so that the process
 * group id cannot be reused while helpers left in the group are killed. */
static bool reap_locked(struct nb_custom_handler *ch)
{
    if (ch->pid <= 0) return true;
    pid_t pid = ch->pid;
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno != ECHILD) return false;
        /* Reaped behind our back (SIGCHLD set to SIG_IGN somewhere). */
        nb_log_error(ch->log, "custom handler (pid %d) is gone", (int)pid);
        ch->pid = -1;
        return true;
    }
    if (si.si_pid == 0) return false;
    (void)kill(-pid, SIGKILL);
    int st = 0;
    (void)waitpid(pid, &st, 0);
    ch->pid = -1;
    if (WIFSIGNALED(st))
        nb_log_error(ch->log, "custom handler (pid %d) was killed by signal %d", (int)pid,
                     WTERMSIG(st));
    else
        nb_log_error(ch->log, "custom handler (pid %d) exited with status %d", (int)pid,
                     WEXITSTATUS(st));
    return true;
}

static int64_t backoff_ms(int strikes)
{
    if (strikes <= 0) return 0;
    int64_t d = 1000;
    for (int i = 1; i < strikes && d < CH_BACKOFF_MAX_MS; i++) d *= 2;
    return d < CH_BACKOFF_MAX_MS ? d : CH_BACKOFF_MAX_MS;
}

/* Under ch->mu, after the child of a ready handler was reaped. It is
 * restarted at once; a handler that keeps dying young (or failing to
 * start) is restarted after 1 s, 2 s, 4 s ... 30 s instead. */
static void mark_down_locked(struct nb_custom_handler *ch)
{
    int64_t now = mono_ms();
    if (now - ch->ready_at_ms < CH_SHORT_RUN_MS) ch->strikes++;
    else ch->strikes = 0;
    int64_t delay = backoff_ms(ch->strikes - 1);
    ch->next_try_ms = now + delay;
    ch->state = CH_DOWN;
    if (delay)
        nb_log_error(ch->log, "custom handler keeps exiting; restarting it in %lld ms",
                     (long long)delay);
    else
        nb_log_error(ch->log, "custom handler: restarting it");
    pthread_cond_broadcast(&ch->cv);
}

static int ready_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    struct nb_custom_handler *ch = ud;
    return atomic_load(&ch->stopping) ? 1 : 0;
}

/* Poll GET / every 25 ms until any HTTP response arrives (socket errors
 * mean "not yet"), the child exits, the deadline passes or we stop. The
 * handle used goes to the pool afterwards, so the first invocation reuses
 * the connection. */
static enum nb_err wait_until_ready(struct nb_custom_handler *ch, pid_t pid, int port)
{
    int64_t deadline = mono_ms() + ch->ready_timeout_ms;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    CURL *h = pool_get(ch);
    struct sink sink = { NULL, false };
    enum nb_err rc = NB_ERR_IO;
    for (;;) {
        pthread_mutex_lock(&ch->mu);
        bool stop = atomic_load(&ch->stopping);
        bool gone = ch->pid != pid || reap_locked(ch);
        pthread_mutex_unlock(&ch->mu);
        if (stop) {
            rc = NB_ERR_STOPPED;
            break;
        }
        if (gone) {
            nb_log_error(ch->log, "custom handler %s exited before it answered GET / on port %d",
                         ch->exe, port);
            break;
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            nb_log_error(ch->log,
                         "custom handler %s did not answer GET http://127.0.0.1:%d/ within %lld ms",
                         ch->exe, port, (long long)ch->ready_timeout_ms);
            break;
        }
        curl_easy_reset(h);
        base_opts(h, url, &sink, NULL);
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, ready_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, ch);
        if (curl_easy_perform(h) == CURLE_OK) {
            rc = NB_OK;
            break;
        }
        sleep_ms(left < CH_POLL_MS ? left : CH_POLL_MS);
    }
    pool_put(ch, h);
    return rc;
}

/* Spawn a child on a free port (the previous one when it is still free)
 * and wait for it. On failure the child is killed and the state is DOWN. */
static enum nb_err launch(struct nb_custom_handler *ch)
{
    pthread_mutex_lock(&ch->mu);
    int prefer = ch->port;
    pthread_mutex_unlock(&ch->mu);
    int port = prefer > 0 ? try_bind(prefer) : -1;
    if (port < 0) port = try_bind(0);
    if (port < 0) {
        char eb[128];
        nb_log_error(ch->log, "custom handler: no free port on 127.0.0.1: %s",
                     err_text(errno, eb, sizeof(eb)));
        return NB_ERR_IO;
    }
    pid_t pid;
    enum nb_err rc = spawn_child(ch, port, &pid);
    if (rc) return rc;

    pthread_mutex_lock(&ch->mu);
    ch->pid = pid;
    ch->port = port;
    ch->state = CH_STARTING;
    pthread_mutex_unlock(&ch->mu);

    rc = wait_until_ready(ch, pid, port);

    pthread_mutex_lock(&ch->mu);
    if (rc == NB_OK) {
        ch->state = CH_READY;
        ch->gen++;
        ch->ready_at_ms = mono_ms();
    } else {
        ch->state = CH_DOWN;
        if (ch->pid == pid) {
            (void)kill(-pid, SIGKILL);
            (void)waitpid(pid, NULL, 0);
            ch->pid = -1;
        }
    }
    pthread_cond_broadcast(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
    if (rc == NB_OK)
        nb_log_info(ch->log, "custom handler %s is ready (pid %d, port %d)", ch->exe, (int)pid,
                    port);
    return rc;
}

/* The supervisor: notices a dead child within CH_MONITOR_MS (invocations
 * that fail notice sooner and wake it) and starts a new one. */
static void *monitor_main(void *arg)
{
    struct nb_custom_handler *ch = arg;
    pthread_mutex_lock(&ch->mu);
    while (!atomic_load(&ch->stopping)) {
        if (ch->state == CH_READY && reap_locked(ch)) mark_down_locked(ch);
        if (ch->state == CH_DOWN && mono_ms() >= ch->next_try_ms) {
            pthread_mutex_unlock(&ch->mu);
            enum nb_err rc = launch(ch);
            pthread_mutex_lock(&ch->mu);
            if (rc && rc != NB_ERR_STOPPED) {
                ch->strikes++;
                int64_t delay = backoff_ms(ch->strikes - 1);
                ch->next_try_ms = mono_ms() + delay;
                nb_log_error(ch->log, "custom handler: start failed; next try in %lld ms",
                             (long long)delay);
            }
            continue;
        }
        struct timespec ts;
        abs_deadline(&ts, CH_MONITOR_MS);
        pthread_cond_timedwait(&ch->cv, &ch->mu, &ts);
    }
    pthread_mutex_unlock(&ch->mu);
    return NULL;
}

/* Wait (bounded by the readiness timeout) until a child is ready. */
static enum nb_err await_ready(struct nb_custom_handler *ch, int *port, unsigned *gen)
{
    pthread_mutex_lock(&ch->mu);
    if (ch->state != CH_READY && !atomic_load(&ch->stopping)) {
        struct timespec ts;
        abs_deadline(&ts, ch->ready_timeout_ms);
        while (ch->state != CH_READY && !atomic_load(&ch->stopping))
            if (pthread_cond_timedwait(&ch->cv, &ch->mu, &ts) == ETIMEDOUT) break;
    }
    enum nb_err rc = atomic_load(&ch->stopping) ? NB_ERR_STOPPED
                     : ch->state == CH_READY    ? NB_OK
                                                : NB_ERR_IO;
    *port = ch->port;
    *gen = ch->gen;
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

/* After a failed request: is the child that served generation `gen` gone?
 * Its sockets close a moment before it becomes a zombie, so a reset
 * connection is given CH_CRASH_PROBE_MS for the exit to show. */
static bool handler_gone(struct nb_custom_handler *ch, unsigned gen)
{
    for (int64_t waited = 0;; waited += 5) {
        pthread_mutex_lock(&ch->mu);
        bool gone;
        if (ch->gen != gen || ch->state != CH_READY) {
            gone = true;
        } else if (reap_locked(ch)) {
            mark_down_locked(ch);
            gone = true;
        } else {
            gone = false;
        }
        pthread_mutex_unlock(&ch->mu);
        if (gone || waited >= CH_CRASH_PROBE_MS) return gone;
        sleep_ms(5);
    }
}

/* --- the default invocation: {"Data","Metadata"} -> {"Outputs","Logs","ReturnValue"} --- */

static bool is_binary_media(const struct nb_invocation *inv)
{
    for (size_t i = 0; i < inv->nheaders; i++) {
        if (strcasecmp(inv->headers[i].name, "Content-Type") != 0) continue;
        const char *v = inv->headers[i].value;
        while (*v == ' ' || *v == '\t') v++;
        size_t n = strcspn(v, ";");
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
        char media[128];
        if (n >= sizeof(media)) return false;
        memcpy(media, v, n);
        media[n] = '\0';
        return strcasecmp(media, "application/octet-stream") == 0 ||
               strcasestr(media, "multipart/") != NULL;
    }
    return false;
}

static bool same_name(const struct nb_kv *kv, size_t i, size_t j)
{
    return strcasecmp(kv[i].name, kv[j].name) == 0;
}

/* Whether an earlier entry has the same name (ASP.NET's collections are
 * case-insensitive, so such names are one entry). Quadratic, on lists that
 * are a handful long. */
static bool seen_before(const struct nb_kv *kv, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (same_name(kv, i, j)) return true;
    return false;
}

/* The request the way the host's GetRequestAsJObject serialises it. Query
 * values of a repeated name are joined with ',' (StringValues.ToString);
 * header values of a repeated name become one array; Body is present only
 * when the request has one, base64 for octet-stream and multipart. */
static void jw_http_request(struct nb_buf *b, const struct nb_invocation *inv)
{
    (void)nb_buf_addc(b, '{');
    jw_key(b, "Url");
    jw_cstr(b, inv->url);
    (void)nb_buf_addc(b, ',');
    jw_key(b, "Method");
    jw_cstr(b, inv->method);

    (void)nb_buf_adds(b, ",\"Query\":{");
    bool first = true;
    struct nb_buf joined;
    nb_buf_init(&joined, SIZE_MAX / 2);
    for (size_t i = 0; i < inv->nquery; i++) {
        if (seen_before(inv->query, i)) continue;
        nb_buf_reset(&joined);
        for (size_t k = i; k < inv->nquery; k++) {
            if (k > i && !same_name(inv->query, i, k)) continue;
            if (k > i) (void)nb_buf_addc(&joined, ',');
            (void)nb_buf_add(&joined, inv->query[k].value, inv->query[k].value_len);
        }
        if (!first) (void)nb_buf_addc(b, ',');
        first = false;
        jw_key(b, inv->query[i].name);
        jw_str(b, joined.data, joined.len);
    }
    nb_buf_cleanup(&joined);

    (void)nb_buf_adds(b, "},\"Headers\":{");
    first = true;
    for (size_t i = 0; i < inv->nheaders; i++) {
        if (seen_before(inv->headers, i)) continue;
        if (!first) (void)nb_buf_addc(b, ',');
        first = false;
        jw_key(b, inv->headers[i].name);
        (void)nb_buf_addc(b, '[');
        for (size_t k = i; k < inv->nheaders; k++) {
            if (k > i && !same_name(inv->headers, i, k)) continue;
            if (k > i) (void)nb_buf_addc(b, ',');
            jw_str(b, inv->headers[k].value, inv->headers[k].value_len);
        }
        (void)nb_buf_addc(b, ']');
    }

    (void)nb_buf_adds(b, "},\"Params\":{");
    for (size_t i = 0; i < inv->nparams; i++) {
        if (seen_before(inv->params, i)) continue;
        if (i) (void)nb_buf_addc(b, ',');
        jw_key(b, inv->params[i].name);
        jw_str(b, inv->params[i].value, inv->params[i].value_len);
    }
    (void)nb_buf_adds(b, "},\"Identities\":[]");

    if (inv->body && inv->body_len > 0) {
        (void)nb_buf_adds(b, ",\"Body\":");
        if (is_binary_media(inv)) {
            char *b64 = nb_base64_encode(inv->body, inv->body_len);
            (void)nb_buf_addc(b, '"');
            (void)nb_buf_adds(b, b64);
            (void)nb_buf_addc(b, '"');
            free(b64);
        } else {
            jw_str(b, inv->body, inv->body_len);
        }
    }
    (void)nb_buf_addc(b, '}');
}

static nb_time_ms real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (nb_time_ms)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The invocation body, written straight as JSON text (a jansson tree per
 * invocation cost more than the rest of our side of it). Data holds the
 * trigger value under the trigger binding's name and each input binding
 * under its name; Metadata holds the trigger metadata without keys ending
 * in "trigger" (the value is already in Data), the route values of an HTTP
 * trigger, and sys. A member name that would repeat is skipped. */
static char *build_payload(const struct nb_invocation *inv, size_t *len)
{
    const struct nb_function *fn = inv->fn;
    struct nb_buf b;
    nb_buf_init(&b, SIZE_MAX / 2);
    const char *tname = fn->trigger < fn->nbindings && fn->bindings[fn->trigger].name
                            ? fn->bindings[fn->trigger].name
                            : "trigger";
    (void)nb_buf_adds(&b, "{\"Data\":{");
    jw_key(&b, tname);
    switch (inv->kind) {
    case NB_TRIGGER_HTTP:
        jw_http_request(&b, inv);
        break;
    case NB_TRIGGER_TIMER:
        jw_json_or_string(&b, inv->trigger_data, inv->trigger_len);
        break;
    case NB_TRIGGER_QUEUE: /* a string even when the text is JSON, as Azure passes it */
    case NB_TRIGGER_MANUAL:
    default:
        jw_str(&b, inv->trigger_data, inv->trigger_data ? inv->trigger_len : 0);
        break;
    }
    for (size_t i = 0; i < inv->ninputs; i++) {
        if (strcmp(inv->inputs[i].name, tname) == 0 || seen_before(inv->inputs, i)) continue;
        (void)nb_buf_addc(&b, ',');
        jw_key(&b, inv->inputs[i].name);
        jw_json_or_string(&b, inv->inputs[i].value, inv->inputs[i].value_len);
    }

    (void)nb_buf_adds(&b, "},\"Metadata\":{");
    bool first = true;
    json_t *meta = NULL;
    const char *mj = inv->metadata_json;
    if (mj && strcmp(mj, "{}") != 0) meta = json_loads(mj, 0, NULL);
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) { /* nothing unless meta is an object */
        if (ends_with_ci(k, "trigger")) continue;
        if (!first) (void)nb_buf_addc(&b, ',');
        first = false;
        jw_key(&b, k);
        jw_json(&b, v);
    }
    if (inv->kind == NB_TRIGGER_HTTP) {
        for (size_t i = 0; i < inv->nparams; i++) {
            const char *name = inv->params[i].name;
            if (ends_with_ci(name, "trigger") || json_object_get(meta, name) ||
                seen_before(inv->params, i))
                continue;
            if (!first) (void)nb_buf_addc(&b, ',');
            first = false;
            jw_key(&b, name);
            jw_str(&b, inv->params[i].value, inv->params[i].value_len);
        }
    }
    if (!json_object_get(meta, "sys")) {
        /* The host normally supplies sys; this fallback reads the real
         * clock because the worker has no nb_clock of its own. */
        char now[NB_ISO8601_LEN], guid[37];
        nb_time_iso8601(real_now(), now);
        nb_random_uuid(guid);
        if (!first) (void)nb_buf_addc(&b, ',');
        (void)nb_buf_adds(&b, "\"sys\":{\"MethodName\":");
        jw_cstr(&b, fn->name);
        (void)nb_buf_printf(&b, ",\"UtcNow\":\"%s\",\"RandGuid\":\"%s\"}", now, guid);
    }
    json_decref(meta);
    (void)nb_buf_adds(&b, "}}");
    return nb_buf_detach(&b, len);
}

static bool has_header_ci(const struct nb_inv_result *res, const char *name)
{
    for (size_t i = 0; i < res->nheaders; i++)
        if (strcasecmp(res->headers[i].name, name) == 0) return true;
    return false;
}

static bool header_safe(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

/* A header from an output binding; headers the listener owns are dropped. */
static void add_out_header(struct nb_inv_result *res, const char *name, json_t *v)
{
    if (!name[0] || !header_safe(name) || strcasecmp(name, "Content-Length") == 0 ||
        strcasecmp(name, "Transfer-Encoding") == 0)
        return;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) add_out_header(res, name, e);
        return;
    }
    if (json_is_null(v)) return;
    char *text = json_is_string(v) ? nb_strdup(json_string_value(v))
                                   : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text && header_safe(text)) nb_inv_result_add_header(res, name, text);
    free(text);
}

static bool parse_status(json_t *v, int *out)
{
    long long n;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        n = (long long)d;
        if ((double)n != d) return false;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (*s == ' ') s++;
        char *end;
        errno = 0;
        n = strtoll(s, &end, 10);
        while (*end == ' ') end++;
        if (errno || end == s || *end) return false;
    } else {
        return false;
    }
    if (n < 100 || n > 599) return false;
    *out = (int)n;
    return true;
}

/* Body bytes of an http output: a string as is (text, never base64-decoded),
 * anything else as its JSON text. */
static bool set_http_body(struct nb_inv_result *res, json_t *body)
{
    bool is_json = !json_is_string(body);
    enum nb_err rc;
    if (!is_json) {
        rc = nb_buf_add(&res->body, json_string_value(body), json_string_length(body));
    } else {
        char *t = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        rc = t ? nb_buf_adds(&res->body, t) : NB_ERR_NOMEM;
        free(t);
    }
    if (rc) return false;
    if (!has_header_ci(res, "Content-Type"))
        nb_inv_result_add_header(res, "Content-Type",
                                 is_json ? "application/json; charset=utf-8"
                                         : "text/plain; charset=utf-8");
    return true;
}

/* {statusCode|status, headers, body} (keys in any case, as the host reads
 * them); a string that holds such an object counts as the object (the
 * host's GetHttpOutputBindingResponse); any other value is the body. */
static void apply_http_output(struct nb_inv_result *res, const char *bname, json_t *v)
{
    json_t *parsed = NULL;
    if (json_is_string(v)) {
        parsed = json_loadb(json_string_value(v), json_string_length(v), 0, NULL);
        if (json_is_object(parsed)) v = parsed;
    }
    nb_buf_reset(&res->body);
    int status = 200;
    if (!json_is_object(v)) {
        if (!set_http_body(res, v)) goto too_large;
        goto done;
    }
    json_t *sc = get_ci(v, "statusCode");
    if (!sc || json_is_null(sc)) sc = get_ci(v, "status");
    if (sc && !json_is_null(sc) && !parse_status(sc, &status)) {
        char *t = json_dumps(sc, JSON_COMPACT | JSON_ENCODE_ANY);
        nb_inv_result_fail(res, "output binding '%s': invalid HTTP status code %s", bname,
                           t ? t : "?");
        free(t);
        goto out;
    }
    json_t *hs = get_ci(v, "headers");
    const char *hk;
    json_t *hv;
    json_object_foreach(hs, hk, hv) add_out_header(res, hk, hv);
    json_t *body = get_ci(v, "body");
    if (body && !json_is_null(body) && !set_http_body(res, body)) goto too_large;
done:
    res->has_http = true;
    res->status = status;
    goto out;
too_large:
    nb_inv_result_fail(res, "output binding '%s': HTTP body exceeds %u bytes", bname,
                       (unsigned)CH_BODY_MAX);
out:
    json_decref(parsed);
}

static void add_one_output(struct nb_inv_result *res, const char *bname, json_t *v)
{
    if (!v || json_is_null(v)) return;
    if (json_is_string(v)) {
        nb_inv_result_add_output(res, bname, json_string_value(v), json_string_length(v));
        return;
    }
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (t) nb_inv_result_add_output(res, bname, t, strlen(t));
    free(t);
}

/* Queue, table and unknown outputs: an array is one output per element;
 * strings go as they are, other values as JSON text. The host's quirk of
 * base64-decoding any string that happens to be valid base64 ("test",
 * "abcd") is deliberately not reproduced: it silently turns ordinary words
 * into binary messages. */
static void apply_value_output(struct nb_inv_result *res, const char *bname, json_t *v)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) add_one_output(res, bname, e);
    } else {
        add_one_output(res, bname, v);
    }
}

static void snippet(const struct nb_buf *b, char out[CH_SNIPPET + 4])
{
    size_t n = b->len < CH_SNIPPET ? b->len : CH_SNIPPET;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b->data[i];
        out[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    if (b->len > n) {
        memcpy(out + n, "...", 4);
    } else {
        out[n] = '\0';
    }
}

static void apply_reply(const struct nb_invocation *inv, long status, struct nb_buf *body,
                        struct nb_inv_result *res)
{
    json_t *root = NULL;
    if (status < 200 || status > 299) {
        char snip[CH_SNIPPET + 4];
        snippet(body, snip);
        nb_inv_result_fail(res, "custom handler answered HTTP %ld%s%s", status,
                           snip[0] ? ": " : "", snip);
        goto out;
    }
    if (body->len == 0) goto out; /* no outputs, no logs */
    json_error_t jerr;
    root = json_loadb(body->data, body->len, 0, &jerr);
    if (!json_is_object(root)) {
        nb_inv_result_fail(res, "custom handler reply is not a JSON object: %s",
                           root ? "wrong type" : jerr.text);
        goto out;
    }
    json_t *logs = get_ci(root, "Logs");
    size_t i;
    json_t *e;
    json_array_foreach(logs, i, e) {
        if (json_is_string(e)) {
            nb_inv_result_add_log(res, json_string_value(e));
        } else if (!json_is_null(e)) {
            char *t = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
            if (t) nb_inv_result_add_log(res, t);
            free(t);
        }
    }
    json_t *outputs = get_ci(root, "Outputs");
    json_t *ret = get_ci(root, "ReturnValue");
    const struct nb_function *fn = inv->fn;
    for (size_t b = 0; b < fn->nbindings && res->ok; b++) {
        const struct nb_binding *bd = &fn->bindings[b];
        if (!bd->out || !bd->name) continue;
        json_t *v = strcmp(bd->name, "$return") == 0 ? ret : get_ci(outputs, bd->name);
        if (!v || json_is_null(v)) continue;
        if (bd->type == NB_BIND_HTTP) apply_http_output(res, bd->name, v);
        else apply_value_output(res, bd->name, v);
    }
out:
    json_decref(root);
}

/* --- forwarding ----------------------------------------------------------------------- */

/* IsHttpInAndOutFunction: exactly one input, an httpTrigger, and exactly
 * one output, an http binding. */
static bool forwards(const struct nb_app *app, const struct nb_function *fn)
{
    if (!app->custom.forwarding) return false;
    size_t nin = 0, nout = 0;
    bool in_ok = false, out_ok = false;
    for (size_t i = 0; i < fn->nbindings; i++) {
        const struct nb_binding *b = &fn->bindings[i];
        if (b->out) {
            nout++;
            out_ok = b->type == NB_BIND_HTTP;
        } else {
            nin++;
            in_ok = b->type == NB_BIND_HTTP_TRIGGER;
        }
    }
    return nin == 1 && nout == 1 && in_ok && out_ok;
}

static bool is_one_of(const char *name, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcasecmp(name, list[i]) == 0) return true;
    return false;
}

/* Request headers curl or the connection owns. */
static const char *const fwd_req_skip[] = {
    "Host", "Content-Length", "Connection", "Transfer-Encoding", "Expect", "User-Agent", NULL,
};
/* Reply headers the listener sets itself. */
static const char *const fwd_resp_skip[] = {
    "Transfer-Encoding", "Connection", "Content-Length", "Date", "Server", "Keep-Alive", NULL,
};

static void clear_headers(struct nb_inv_result *res)
{
    for (size_t i = 0; i < res->nheaders; i++) {
        free(res->headers[i].name);
        free(res->headers[i].value);
    }
    res->nheaders = 0;
}

/* Collect the reply headers into res; an interim (1xx) status line starts
 * the set over. */
static size_t fwd_header(char *p, size_t size, size_t n, void *ud)
{
    struct nb_inv_result *res = ud;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        clear_headers(res);
        return len;
    }
    size_t end = len;
    while (end && (p[end - 1] == '\r' || p[end - 1] == '\n')) end--;
    const char *colon = memchr(p, ':', end);
    if (!colon || colon == p) return len;
    size_t vs = (size_t)(colon - p) + 1;
    while (vs < end && (p[vs] == ' ' || p[vs] == '\t')) vs++;
    size_t ve = end;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t')) ve--;
    char *name = nb_strndup(p, (size_t)(colon - p));
    if (!is_one_of(name, fwd_resp_skip)) {
        char *value = nb_strndup(p + vs, ve - vs);
        nb_inv_result_add_header(res, name, value);
        free(value);
    }
    free(name);
    return len;
}

static struct curl_slist *add_line(struct curl_slist *l, const char *line)
{
    struct curl_slist *n = curl_slist_append(l, line);
    if (!n) {
        fputs("custom handler: out of memory\n", stderr);
        abort();
    }
    return n;
}

static struct curl_slist *add_hdr(struct curl_slist *l, const char *name, const char *value)
{
    /* "Name;" is curl's spelling of a header with an empty value. */
    char *line = value[0] ? nb_asprintf("%s: %s", name, value) : nb_asprintf("%s;", name);
    struct curl_slist *n = add_line(l, line);
    free(line);
    return n;
}

/* Everything one exchange with the handler allocates. */
struct call {
    struct nb_buf url;
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE];
};

static void setup_forward(struct nb_custom_handler *ch, CURL *h, const struct nb_invocation *inv,
                          int port, struct call *c, struct sink *sink, struct nb_inv_result *res)
{
    /* Only an absolute path may follow the authority: anything else (e.g.
     * "@evil.example/") would make curl talk to another host. */
    const char *fwd_path = inv->path && inv->path[0] == '/' ? inv->path : "/";
    (void)nb_buf_printf(&c->url, "http://127.0.0.1:%d%s", port, fwd_path);
    if (inv->raw_query && inv->raw_query[0]) {
        (void)nb_buf_addc(&c->url, '?');
        (void)nb_buf_adds(&c->url, inv->raw_query);
    }
    base_opts(h, nb_buf_cstr(&c->url), sink, c->errbuf);

    const char *method = inv->method ? inv->method : "GET";
    bool has_body = inv->body_len > 0 || strcasecmp(method, "POST") == 0 ||
                    strcasecmp(method, "PUT") == 0 || strcasecmp(method, "PATCH") == 0;
    if (strcasecmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        has_body = false;
    } else if (has_body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, inv->body ? inv->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)inv->body_len);
        if (strcmp(method, "POST") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        if (strcmp(method, "GET") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }

    bool saw_accept = false, saw_ctype = false;
    const char *client_ua = NULL;
    for (size_t i = 0; i < inv->nheaders; i++) {
        const struct nb_kv *kv = &inv->headers[i];
        if (strcasecmp(kv->name, "User-Agent") == 0 && !client_ua) client_ua = kv->value;
        if (is_one_of(kv->name, fwd_req_skip)) continue;
        if (strcasecmp(kv->name, "Accept") == 0) saw_accept = true;
        if (strcasecmp(kv->name, "Content-Type") == 0) saw_ctype = true;
        c->hdrs = add_hdr(c->hdrs, kv->name, kv->value ? kv->value : "");
    }
    /* Keep curl from adding headers the client did not send. */
    if (!saw_accept) c->hdrs = add_line(c->hdrs, "Accept:");
    if (has_body && !saw_ctype) c->hdrs = add_line(c->hdrs, "Content-Type:");
    c->hdrs = add_line(c->hdrs, "Expect:");
    c->hdrs = add_hdr(c->hdrs, "X-Azure-Functions-InvocationId", inv->id);
    c->hdrs = add_line(c->hdrs, ch->hdr_version);
    /* Azure ParseAdds its product token to the client's User-Agent. */
    char *ua = client_ua && client_ua[0] ? nb_asprintf("%s %s", client_ua, ch->ua)
                                         : nb_strdup(ch->ua);
    c->hdrs = add_hdr(c->hdrs, "User-Agent", ua);
    free(ua);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, fwd_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, res);
}

static void setup_default(struct nb_custom_handler *ch, CURL *h, const struct nb_invocation *inv,
                          int port, const char *payload, size_t len, struct call *c,
                          struct sink *sink)
{
    (void)nb_buf_printf(&c->url, "http://127.0.0.1:%d/", port);
    (void)nb_pct_encode(&c->url, inv->fn->name, strlen(inv->fn->name));
    base_opts(h, nb_buf_cstr(&c->url), sink, c->errbuf);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    c->hdrs = add_line(c->hdrs, "Content-Type: application/json");
    c->hdrs = add_line(c->hdrs, "Accept:"); /* HttpClient sends none; one header less to parse */
    c->hdrs = add_hdr(c->hdrs, "X-Azure-Functions-InvocationId", inv->id);
    c->hdrs = add_line(c->hdrs, ch->hdr_version);
    c->hdrs = add_hdr(c->hdrs, "User-Agent", ch->ua);
    c->hdrs = add_line(c->hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hdrs);
}

/* --- public API ----------------------------------------------------------------------- */

/* One HTTP exchange with the handler on `port`; the reply body goes to
 * `sink`, its status to *status. */
static CURLcode exchange(struct nb_custom_handler *ch, const struct nb_invocation *inv, bool fwd,
                         int port, const char *payload, size_t payload_len, struct sink *sink,
                         struct nb_inv_result *res, long *status, bool *request_sent,
                         char *errbuf)
{
    struct call c;
    memset(&c, 0, sizeof(c));
    nb_buf_init(&c.url, 64 * 1024);
    CURL *h = pool_get(ch);
    if (fwd) setup_forward(ch, h, inv, port, &c, sink, res);
    else setup_default(ch, h, inv, port, payload, payload_len, &c, sink);
    /* The Azure host gives its HttpClient functionTimeout + 1 min and lets
     * its own timer fail the invocation at functionTimeout; we have no
     * separate timer, so the transfer itself is bounded by exactly
     * functionTimeout (none when it is -1) and a timeout fails the
     * invocation. The handler is left running: it serves other invocations
     * concurrently, and killing it would fail them too. */
    int64_t timeout = ch->app->function_timeout_ms;
    if (timeout > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
    /* nb_custom_handler_cancel aborts the transfer (shutdown). */
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, ready_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, ch);
    CURLcode cc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    long sent = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
    *request_sent = sent > 0;
    snprintf(errbuf, CURL_ERROR_SIZE, "%s", c.errbuf[0] ? c.errbuf : curl_easy_strerror(cc));
    pool_put(ch, h);
    curl_slist_free_all(c.hdrs);
    nb_buf_cleanup(&c.url);
    return cc;
}

enum nb_err nb_custom_handler_invoke(struct nb_custom_handler *ch,
                                     const struct nb_invocation *inv, struct nb_inv_result *res)
{
    bool fwd = inv->kind == NB_TRIGGER_HTTP && forwards(ch->app, inv->fn);
    size_t payload_len = 0;
    char *payload = fwd ? NULL : build_payload(inv, &payload_len);
    struct nb_buf reply;
    nb_buf_init(&reply, CH_BODY_MAX);
    enum nb_err rc;
    unsigned gen;
    struct sink sink;
    bool sent;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode cc;

    /* A second attempt only when the first one wrote no byte (the child had
     * died and its successor was not up yet): the handler must never see
     * one invocation twice, and a request curl wrote to a kept-alive
     * connection may have reached it. */
    for (int attempt = 0;; attempt++) {
        int port;
        rc = await_ready(ch, &port, &gen);
        if (rc == NB_ERR_STOPPED) goto cleanup;
        if (rc) {
            rc = NB_OK;
            nb_inv_result_fail(res, "custom handler is not running (not ready within %lld ms)",
                               (long long)ch->ready_timeout_ms);
            goto cleanup;
        }
        if (fwd) {
            clear_headers(res);
            nb_buf_reset(&res->body);
        } else {
            nb_buf_reset(&reply);
        }
        sink = (struct sink){ fwd ? &res->body : &reply, false };
        long status;
        cc = exchange(ch, inv, fwd, port, payload, payload_len, &sink, res, &status, &sent,
                      errbuf);
        if (cc == CURLE_OK) {
            if (fwd) {
                /* Any status is the function's answer, relayed as is. */
                res->has_http = true;
                res->status = (int)status;
            } else {
                apply_reply(inv, status, &reply, res);
            }
            goto cleanup;
        }
        if (attempt == 0 && !sent && cc == CURLE_COULDNT_CONNECT && handler_gone(ch, gen))
            continue;
        break;
    }

    if (fwd) {
        clear_headers(res);
        nb_buf_reset(&res->body);
    }
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        nb_inv_result_fail(res, "function timed out (after %lld ms)",
                           (long long)ch->app->function_timeout_ms);
    } else if (cc == CURLE_WRITE_ERROR && sink.too_large) {
        nb_inv_result_fail(res, "custom handler reply exceeds %u bytes", (unsigned)CH_BODY_MAX);
    } else if (handler_gone(ch, gen)) {
        res->crashed = true;
        nb_inv_result_fail(res, "custom handler process exited during the invocation (%s)",
                           errbuf);
    } else {
        nb_inv_result_fail(res, "custom handler request failed: %s", errbuf);
    }

cleanup:
    free(payload);
    nb_buf_cleanup(&reply);
    return rc;
}

static const struct nb_log default_log = { NB_LOG_TEXT, false };

enum nb_err nb_custom_handler_start(const struct nb_custom_handler_start *cfg,
                                    struct nb_custom_handler **out)
{
    *out = NULL;
    const struct nb_log *log = cfg->log ? cfg->log : &default_log;
    const struct nb_app *app = cfg->app;
    if (!app || !app->custom.executable || !app->custom.executable[0]) {
        nb_log_error(log, "custom handler: host.json has no customHandler.description."
                          "defaultExecutablePath");
        return NB_ERR_IO;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        nb_log_error(log, "custom handler: curl_global_init failed");
        return NB_ERR_IO;
    }
    struct nb_custom_handler *ch = nb_calloc(1, sizeof(*ch));
    ch->app = app;
    ch->env = cfg->env;
    ch->log = log;
    ch->ready_timeout_ms = cfg->ready_timeout_ms > 0 ? cfg->ready_timeout_ms : CH_READY_DEFAULT_MS;
    ch->pid = -1;
    ch->state = CH_DOWN;
    atomic_init(&ch->stopping, false);
    nb_random_uuid(ch->worker_id);
    const char *ver = cfg->host_version && cfg->host_version[0] ? cfg->host_version : "4.0.0";
    ch->hdr_version = nb_asprintf("X-Azure-Functions-HostVersion: %s", ver);
    ch->ua = nb_asprintf("Azure-Functions-Host/%s", ver);
    pthread_mutex_init(&ch->mu, NULL);
    pthread_mutex_init(&ch->pool_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ch->cv, &ca);
    pthread_condattr_destroy(&ca);

    /* app.c has already made the executable absolute when it lives in the
     * working directory; a relative path with a '/' is still taken relative
     * to it, and a bare name is left to PATH (posix_spawnp). */
    const struct nb_custom_handler_config *cc = &app->custom;
    ch->workdir = nb_strdup(cc->working_dir ? cc->working_dir : app->root ? app->root : ".");
    if (cc->executable[0] == '/') {
        ch->exe = nb_strdup(cc->executable);
    } else if (strchr(cc->executable, '/')) {
        ch->exe = nb_asprintf("%s/%s", ch->workdir, cc->executable);
    } else {
        char *cand = nb_asprintf("%s/%s", ch->workdir, cc->executable);
        if (access(cand, X_OK) == 0) {
            ch->exe = cand;
        } else {
            free(cand);
            ch->exe = nb_strdup(cc->executable);
            ch->search_path = true;
        }
    }
    ch->argv = nb_calloc(cc->narguments + 2, sizeof(*ch->argv));
    ch->argv[0] = nb_strdup(cc->executable);
    for (size_t i = 0; i < cc->narguments; i++) ch->argv[i + 1] = nb_strdup(cc->arguments[i]);

    enum nb_err rc = launch(ch);
    if (rc) goto fail;
    if (pthread_create(&ch->monitor, NULL, monitor_main, ch) != 0) {
        nb_log_error(log, "custom handler: cannot create the supervisor thread");
        goto fail;
    }
    ch->monitor_started = true;
    *out = ch;
    return NB_OK;

fail:
    nb_custom_handler_stop(ch);
    return NB_ERR_IO;
}

void nb_custom_handler_cancel(struct nb_custom_handler *ch)
{
    if (!ch) return;
    pthread_mutex_lock(&ch->mu);
    atomic_store(&ch->stopping, true);
    pthread_cond_broadcast(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
}

void nb_custom_handler_stop(struct nb_custom_handler *ch)
{
    if (!ch) return;
    pthread_mutex_lock(&ch->mu);
    atomic_store(&ch->stopping, true);
    pthread_cond_broadcast(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
    if (ch->monitor_started) pthread_join(ch->monitor, NULL);

    /* Nothing else reaps now: the monitor is gone and callers have no
     * invocation in flight (see the header). */
    pid_t pid = ch->pid;
    if (pid > 0) {
        (void)kill(-pid, SIGTERM);
        (void)kill(pid, SIGTERM); /* in case it left its process group */
        /* Observe the exit without reaping (WNOWAIT) so the group id stays
         * ours while helpers left in the group are killed. */
        for (int64_t waited = 0;; waited += 10) {
            siginfo_t si;
            memset(&si, 0, sizeof(si));
            int r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
            if ((r == 0 && si.si_pid == pid) || (r < 0 && errno == ECHILD) ||
                waited >= CH_STOP_GRACE_MS)
                break;
            sleep_ms(10);
        }
        (void)kill(-pid, SIGKILL);
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        ch->pid = -1;
    }

    for (size_t i = 0; i < ch->nidle; i++) curl_easy_cleanup(ch->idle[i]);
    pthread_cond_destroy(&ch->cv);
    pthread_mutex_destroy(&ch->mu);
    pthread_mutex_destroy(&ch->pool_mu);
    free_strv(ch->argv);
    free(ch->exe);
    free(ch->workdir);
    free(ch->hdr_version);
    free(ch->ua);
    free(ch);
    curl_global_cleanup();
}
