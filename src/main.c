/* The nimbus command: `nimbus start` runs the server; the other
 * subcommands are clients of a running server. This file owns the server
 * struct, option parsing, and the one visible start/stop order of the
 * services. Configuration is read-only once the services have started. */
#include "cli/keys_cmd.h"
#include "cli/queue_cmd.h"
#include "core/log.h"
#include "core/mem.h"
#include "host/app.h"
#include "host/host.h"
#include "host/worker.h"
#include "core/notify.h"
#include "http/accounts.h"
#include "http/service.h"
#include "queue/queue.h"
#include "store/store.h"
#include "table/table.h"
#include "cli/table_cmd.h"
#include <errno.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NB_VERSION "0.1.0"

struct nb_options {
    const char *app_dir;
    const char *data_dir; /* NULL: <app_dir>/.nimbus */
    bool in_memory;
    const char *host;
    int host_port, queue_port, table_port;
    bool host_port_given; /* --port wins over Host.LocalHttpPort */
    enum nb_log_format log_format;
    bool quiet;
    bool test_hooks;
    bool native_in_process;
    enum nb_store_sync sync;
};

/* The server: made in main, passed explicitly, never global. */
struct nb_server {
    struct nb_options opt;
    struct nb_clock clock;
    struct nb_notify wake;
    struct nb_log log;
    struct nb_app *app;
    struct nb_accounts accounts;
    struct nb_store *store;
    struct nb_service_env env;
    struct nb_queue_svc *queue;
    struct nb_table_svc *table;
    struct nb_host *host;
};

static void usage(FILE *f)
{
    fputs("usage: nimbus <command> [options]\n"
          "\n"
          "commands:\n"
          "  start [APP_DIR]   run the server for a function app folder (default .)\n"
          "  keys ...          function keys in a data directory (nimbus keys --help)\n"
          "  queue ...         queue client commands (nimbus queue --help)\n"
          "  table ...         table client commands (nimbus table --help)\n"
          "  entity ...        entity client commands (nimbus entity --help)\n"
          "  version           print the version\n"
          "\n"
          "start options:\n"
          "  --data DIR            data directory (default APP_DIR/.nimbus)\n"
          "  --in-memory           keep nothing on disk\n"
          "  --host ADDR           listen address (default 127.0.0.1)\n"
          "  --port N              host listener port (default 7071)\n"
          "  --queue-port N        queue service port (default 10001)\n"
          "  --table-port N        table service port (default 10002)\n"
          "  --account NAME:KEY    add a storage account (repeatable; also AZURITE_ACCOUNTS)\n"
          "  --log-format text|json\n"
          "  --quiet               no per-request log lines\n"
          "  --sync normal|full    normal survives kill -9; full also power loss\n"
          "  --enable-test-hooks   allow tests to move the server clock\n"
          "  --native-in-process   run native functions inside the server: faster, but a\n"
          "                        crash stops the server and functionTimeout is not enforced\n",
          f);
}

static bool parse_port(const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 65535) return false;
    *out = (int)v;
    return true;
}

/* Returns 0 on success, 2 on a usage error (message printed). */
static int parse_start(int argc, char **argv, struct nb_options *o, struct nb_accounts *acc)
{
    o->app_dir = ".";
    o->host = "127.0.0.1";
    o->host_port = 7071;
    o->queue_port = 10001;
    o->table_port = 10002;
    o->sync = NB_STORE_SYNC_NORMAL;
    bool have_app = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--in-memory") == 0) o->in_memory = true, takes = false;
        else if (strcmp(a, "--quiet") == 0) o->quiet = true, takes = false;
        else if (strcmp(a, "--enable-test-hooks") == 0) o->test_hooks = true, takes = false;
        else if (strcmp(a, "--native-in-process") == 0) o->native_in_process = true, takes = false;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (a[0] != '-') {
            if (have_app) {
                fprintf(stderr, "nimbus: unexpected argument '%s'\n", a);
                return 2;
            }
            o->app_dir = a;
            have_app = true;
            continue;
        }
        if (!takes) continue;
        if (!v) {
            fprintf(stderr, "nimbus: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--data") == 0) o->data_dir = v;
        else if (strcmp(a, "--host") == 0) o->host = v;
        else if (strcmp(a, "--port") == 0 && parse_port(v, &o->host_port)) {
            o->host_port_given = true;
        } else if (strcmp(a, "--queue-port") == 0 && parse_port(v, &o->queue_port)) {
        } else if (strcmp(a, "--table-port") == 0 && parse_port(v, &o->table_port)) {
        } else if (strcmp(a, "--account") == 0) {
            if (nb_accounts_add_spec(acc, v) != NB_OK) {
                fprintf(stderr, "nimbus: bad --account '%s' (want NAME:BASE64KEY)\n", v);
                return 2;
            }
        } else if (strcmp(a, "--log-format") == 0 && strcmp(v, "json") == 0) {
            o->log_format = NB_LOG_JSON;
        } else if (strcmp(a, "--log-format") == 0 && strcmp(v, "text") == 0) {
            o->log_format = NB_LOG_TEXT;
        } else if (strcmp(a, "--sync") == 0 && strcmp(v, "full") == 0) {
            o->sync = NB_STORE_SYNC_FULL;
        } else if (strcmp(a, "--sync") == 0 && strcmp(v, "normal") == 0) {
            o->sync = NB_STORE_SYNC_NORMAL;
        } else {
            fprintf(stderr, "nimbus: bad option %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (o->in_memory && o->data_dir) {
        fputs("nimbus: --data and --in-memory exclude each other\n", stderr);
        return 2;
    }
    return 0;
}

static void print_banner(struct nb_server *s)
{
    const struct nb_account *dev = nb_accounts_find(&s->accounts, NB_DEV_ACCOUNT);
    const struct nb_account *acct = dev ? dev : &s->accounts.items[0];
    int qport = nb_queue_port(s->queue);
    int tport = nb_table_port(s->table);
    printf("Nimbus %s\n\n", NB_VERSION);
    printf("  host     http://%s:%d\n", s->opt.host, nb_host_port(s->host));
    printf("  queue    http://%s:%d/%s\n", s->opt.host, qport, acct->name);
    printf("  table    http://%s:%d/%s\n", s->opt.host, tport, acct->name);
    printf("  store    %s\n\n", s->opt.in_memory ? "in memory" : s->opt.data_dir);
    printf("Connection string (queues and tables):\n"
           "  DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
           "QueueEndpoint=http://%s:%d/%s;TableEndpoint=http://%s:%d/%s;\n\n",
           acct->name, acct->key_b64[0], s->opt.host, qport, acct->name, s->opt.host, tport,
           acct->name);
    for (size_t i = 0; i < s->accounts.n; i++)
        printf("  account  %s\n", s->accounts.items[i].name);
    printf("\n");
    nb_host_print_functions(s->host, stdout);
    printf("Ready. Press Ctrl+C to stop.\n");
    fflush(stdout);
}

static int cmd_start(int argc, char **argv)
{
    struct nb_server s;
    memset(&s, 0, sizeof(s));
    nb_notify_init(&s.wake);
    int rc = 1;
    char *default_data = NULL;

    nb_accounts_init(&s.accounts);
    const char *env_accounts = getenv("AZURITE_ACCOUNTS");
    if (env_accounts && nb_accounts_add_env(&s.accounts, env_accounts) != NB_OK) {
        fputs("nimbus: AZURITE_ACCOUNTS is malformed (want acc:key1[:key2];...)\n", stderr);
        rc = 2;
        goto cleanup;
    }
    if ((rc = parse_start(argc, argv, &s.opt, &s.accounts)) != 0) goto cleanup;
    rc = 1;
    if (!s.opt.data_dir && !s.opt.in_memory) {
        default_data = nb_asprintf("%s/.nimbus", s.opt.app_dir);
        s.opt.data_dir = default_data;
    }
    s.log = (struct nb_log){ s.opt.log_format, s.opt.quiet };
    nb_clock_init(&s.clock);
    char *load_err = NULL;
    enum nb_err lerr = nb_app_load(s.opt.app_dir, &s.app, &load_err);
    if (lerr) {
        if (lerr == NB_ERR_NOT_FOUND)
            fprintf(stderr, "nimbus: %s is not a function app folder\n", s.opt.app_dir);
        else
            fprintf(stderr, "nimbus: %s\n", load_err ? load_err : nb_err_str(lerr));
        free(load_err);
        goto cleanup;
    }
    if (!s.opt.host_port_given && s.app->local_http_port > 0)
        s.opt.host_port = s.app->local_http_port;
    xmlInitParser();

    /* Signals are taken by sigwait below: block them before any thread
     * starts so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct nb_store_config scfg = { s.opt.data_dir, s.opt.in_memory, s.opt.sync };
    enum nb_err err = nb_store_open_sqlite(&scfg, &s.store);
    if (err) {
        nb_log_error(&s.log, "cannot open the store in %s: %s",
                     s.opt.in_memory ? "memory" : s.opt.data_dir, nb_err_str(err));
        goto cleanup;
    }
    s.env = (struct nb_service_env){ &s.clock, s.store, &s.accounts, &s.log, s.opt.host,
                                     s.opt.test_hooks, &s.wake };

    /* Start order: storage services first, the host listener last, so a
     * 200 from /admin/host/ping means everything is up. */
    if (nb_queue_start(&s.env, s.opt.queue_port, &s.queue) != NB_OK) goto cleanup;
    if (nb_table_start(&s.env, s.opt.table_port, &s.table) != NB_OK) goto cleanup;
    char exe[PATH_MAX];
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (exe_len <= 0) {
        nb_log_error(&s.log, "cannot resolve /proc/self/exe");
        goto cleanup;
    }
    exe[exe_len] = '\0';
    struct nb_host_config hcfg = { &s.env, s.app, s.opt.host_port, exe, NB_VERSION,
                                   nb_queue_port(s.queue), nb_table_port(s.table),
                                   s.opt.native_in_process };
    if (nb_host_start(&hcfg, &s.host) != NB_OK) goto cleanup;
    print_banner(&s);

    int sig = 0;
    sigwait(&sigs, &sig);
    nb_log_info(&s.log, "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;

cleanup:
    /* Stop order: refuse new work everywhere, finish in-flight requests,
     * then close the store so every acknowledged write is on disk. */
    nb_host_quiesce(s.host);
    nb_queue_quiesce(s.queue);
    nb_table_quiesce(s.table);
    nb_host_stop(s.host);
    nb_queue_stop(s.queue);
    nb_table_stop(s.table);
    nb_store_close(s.store);
    nb_app_free(s.app);
    nb_notify_cleanup(&s.wake);
    nb_accounts_cleanup(&s.accounts);
    free(default_data);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "start") == 0) return cmd_start(argc - 1, argv + 1);
    if (strcmp(cmd, "worker") == 0) return nb_worker_main(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0) return nb_keys_cmd(argc - 1, argv + 1);
    if (strcmp(cmd, "queue") == 0) return nb_cli_queue_main(argc - 1, argv + 1);
    if (strcmp(cmd, "table") == 0) return nb_cli_table_main(argc - 1, argv + 1);
    if (strcmp(cmd, "entity") == 0) return nb_cli_entity_main(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("nimbus %s\n", NB_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "nimbus: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
