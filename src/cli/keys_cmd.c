/* `nimbus keys …` (see keys_cmd.h): parses the command line, opens the
 * store of an existing data directory and calls host/keys.h. One row per
 * subcommand; nothing here outlives one call of nb_keys_cmd. */
#include "cli/keys_cmd.h"
#include "core/mem.h"
#include "host/keys.h"
#include "store/store.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define DEFAULT_DATA "./.nimbus" /* `nimbus start` in this folder: ./ + .nimbus */

struct ctx {
    const char *pos[2];
    size_t npos;
    const char *function;    /* --function */
    bool host, system;       /* --host, --system */
    enum nb_key_scope scope; /* resolved from the above and the name */
    const char *data;
    struct nb_keys *keys;
};

struct sub {
    const char *name;
    size_t npos;
    int (*run)(struct ctx *x);
    const char *args;
};

static const char usage_text[] =
    "usage: nimbus keys <command> [options]\n"
    "\n"
    "Function keys in a data directory; works with or without a running server\n"
    "(which picks changes up within a second of seeing an unknown key).\n"
    "\n"
    "commands:\n"
    "  list [--function FN | --host | --system]\n"
    "                    every key, or one scope; one line per key:\n"
    "                    SCOPE FUNCTION|- NAME VALUE\n"
    "  show master       the master key's value\n"
    "  show NAME         a key's value\n"
    "  new NAME          create or replace NAME with a generated value; print it\n"
    "                    ('new master' renews the master key)\n"
    "  set NAME VALUE    create or replace NAME with VALUE (16-256 printable\n"
    "                    characters, no spaces or quotes)\n"
    "  delete NAME       delete a key (the master key cannot be deleted)\n"
    "\n"
    "options:\n"
    "  --data DIR        data directory (default ./.nimbus, as `nimbus start` here)\n"
    "  --function FN     the keys of function FN\n"
    "  --system          system keys (e.g. durabletask_extension)\n"
    "  --host            host keys: the default, needed only for a host key\n"
    "                    named \"master\"\n"
    "  -h, --help        this help\n"
    "\n"
    "Key names: 1-128 characters of A-Z a-z 0-9 _ . -\n";

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "nimbus keys: %s%s%s\n", what, arg ? " " : "", arg ? arg : "");
    fputs("try 'nimbus keys --help'\n", stderr);
    return EXIT_USAGE;
}

/* One line on stderr; returns the failure exit status. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("nimbus keys: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_FAIL;
}

static const char *scope_word(enum nb_key_scope s)
{
    switch (s) {
    case NB_KEYS_MASTER: return "master";
    case NB_KEYS_HOST: return "host";
    case NB_KEYS_SYSTEM: return "system";
    default: return "function";
    }
}

/* "host key 'x'" / "key 'x' of function f", for messages. */
static char *describe(const struct ctx *x, const char *name)
{
    if (x->scope == NB_KEYS_MASTER) return nb_strdup("the master key");
    if (x->scope == NB_KEYS_FUNCTION)
        return nb_asprintf("key '%s' of function %s", name, x->function);
    return nb_asprintf("%s key '%s'", scope_word(x->scope), name);
}

static int report(const struct ctx *x, const char *name, enum nb_err rc)
{
    char *what = describe(x, name);
    int status;
    if (rc == NB_ERR_NOT_FOUND)
        status = fail("no %s", what);
    else if (rc == NB_ERR_TOO_LARGE)
        status = fail("too many keys; not added: %s", what);
    else
        status = fail("%s: %s", what, nb_err_str(rc));
    free(what);
    return status;
}

/* ---- subcommands ---------------------------------------------------------- */

static int print_scope(struct ctx *x, enum nb_key_scope scope, const char *function)
{
    struct nb_key_list l;
    enum nb_err rc = nb_keys_list(x->keys, scope, function, &l);
    if (rc) return fail("cannot list keys: %s", nb_err_str(rc));
    for (size_t i = 0; i < l.n; i++)
        printf("%s %s %s %s\n", scope_word(scope), function ? function : "-", l.items[i].name,
               l.items[i].value);
    nb_key_list_cleanup(&l);
    return EXIT_OK;
}

static int run_list(struct ctx *x)
{
    if (x->function) return print_scope(x, NB_KEYS_FUNCTION, x->function);
    if (x->host) return print_scope(x, NB_KEYS_HOST, NULL);
    if (x->system) return print_scope(x, NB_KEYS_SYSTEM, NULL);
    int status = print_scope(x, NB_KEYS_MASTER, NULL);
    if (!status) status = print_scope(x, NB_KEYS_HOST, NULL);
    if (!status) status = print_scope(x, NB_KEYS_SYSTEM, NULL);
    if (status) return status;
    char **names = NULL;
    size_t n = 0;
    enum nb_err rc = nb_keys_functions(x->keys, &names, &n);
    if (rc) return fail("cannot list functions: %s", nb_err_str(rc));
    for (size_t i = 0; i < n && !status; i++)
        status = print_scope(x, NB_KEYS_FUNCTION, names[i]);
    nb_keys_names_free(names, n);
    return status;
}

static int run_show(struct ctx *x)
{
    char *value = NULL;
    enum nb_err rc = nb_keys_get(x->keys, x->scope, x->function, x->pos[0], &value);
    if (rc) return report(x, x->pos[0], rc);
    printf("%s\n", value);
    free(value);
    return EXIT_OK;
}

static int run_set_or_new(struct ctx *x, const char *value)
{
    const char *name = x->pos[0];
    if (x->scope != NB_KEYS_MASTER && !nb_keys_valid_name(name))
        return fail("invalid key name '%s' (1-128 characters of A-Z a-z 0-9 _ . -)", name);
    if (x->scope != NB_KEYS_MASTER && strcasecmp(name, NB_KEYS_MASTER_NAME) == 0)
        return fail("the name %s is reserved to the master key", NB_KEYS_MASTER_NAME);
    if (value && !nb_keys_valid_value(value))
        return fail("invalid key value (16-256 printable characters, no spaces or quotes)");
    char *stored = NULL;
    enum nb_err rc = nb_keys_set(x->keys, x->scope, x->function, name, value, NULL, &stored);
    if (rc) return report(x, name, rc);
    if (!value) printf("%s\n", stored);
    free(stored);
    return EXIT_OK;
}

static int run_new(struct ctx *x)
{
    return run_set_or_new(x, NULL);
}

static int run_set(struct ctx *x)
{
    return run_set_or_new(x, x->pos[1]);
}

static int run_delete(struct ctx *x)
{
    const char *name = x->pos[0];
    if (x->scope == NB_KEYS_MASTER || strcasecmp(name, NB_KEYS_MASTER_NAME) == 0)
        return fail("the master key cannot be deleted (renew it with 'nimbus keys new master')");
    enum nb_err rc = nb_keys_delete(x->keys, x->scope, x->function, name);
    if (rc) return report(x, name, rc);
    return EXIT_OK;
}

/* One row per subcommand. */
/* clang-format off */
static const struct sub subs[] = {
    {"list",   0, run_list,   ""},
    {"show",   1, run_show,   "NAME"},
    {"new",    1, run_new,    "NAME"},
    {"set",    2, run_set,    "NAME VALUE"},
    {"delete", 1, run_delete, "NAME"},
};
/* clang-format on */

/* ---- driver --------------------------------------------------------------- */

/* Returns EXIT_OK, or EXIT_USAGE with the message printed; -1 for --help. */
static int parse(int argc, char **argv, struct ctx *x)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return -1;
        if (strcmp(a, "--host") == 0)
            x->host = true;
        else if (strcmp(a, "--system") == 0)
            x->system = true;
        else if (strcmp(a, "--data") == 0 || strcmp(a, "--function") == 0) {
            if (i + 1 >= argc) return usage_error(a, "needs a value");
            if (strcmp(a, "--data") == 0)
                x->data = argv[++i];
            else
                x->function = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option", a);
        } else {
            if (x->npos == 2) return usage_error("unexpected argument", a);
            x->pos[x->npos++] = a;
        }
    }
    if ((x->function != NULL) + x->host + x->system > 1)
        return usage_error("--function, --host and --system exclude each other", NULL);
    if (x->data && !*x->data) return usage_error("--data needs a directory", NULL);
    return EXIT_OK;
}

/* The scope a command addresses. Without a scope option, "master" (or
 * "_master") names the master key. */
static void resolve_scope(struct ctx *x)
{
    if (x->function)
        x->scope = NB_KEYS_FUNCTION;
    else if (x->system)
        x->scope = NB_KEYS_SYSTEM;
    else if (x->host)
        x->scope = NB_KEYS_HOST;
    else if (x->npos &&
             (strcmp(x->pos[0], "master") == 0 || strcasecmp(x->pos[0], NB_KEYS_MASTER_NAME) == 0))
        x->scope = NB_KEYS_MASTER;
    else
        x->scope = NB_KEYS_HOST;
}

int nb_keys_cmd(int argc, char **argv)
{
    struct ctx x = {0};
    struct nb_store *store = NULL;
    const struct sub *sub = NULL;
    int status = EXIT_OK;

    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(*subs); i++)
        if (strcmp(argv[1], subs[i].name) == 0) sub = &subs[i];
    if (!sub) return usage_error("unknown command", argv[1]);
    status = parse(argc, argv, &x);
    if (status < 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (status) return status;
    if (x.npos != sub->npos) {
        fprintf(stderr, "nimbus keys: usage: nimbus keys %s%s%s [options]\n", sub->name,
                *sub->args ? " " : "", sub->args);
        fputs("try 'nimbus keys --help'\n", stderr);
        return EXIT_USAGE;
    }
    if (x.function && !nb_keys_valid_name(x.function)) {
        fprintf(stderr, "nimbus keys: invalid function name '%s'\n", x.function);
        return EXIT_FAIL;
    }
    resolve_scope(&x);
    if (!x.data) x.data = DEFAULT_DATA;

    /* The store would create a missing directory; keys belong to a server's
     * existing one, so a typo must not start a new, empty key set. */
    struct stat st;
    if (stat(x.data, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail("no data directory at %s (start the server once, or pass --data)", x.data);
    struct nb_store_config cfg = {.dir = x.data, .in_memory = false, .sync = NB_STORE_SYNC_NORMAL};
    enum nb_err rc = nb_store_open_sqlite(&cfg, &store);
    if (rc) {
        status = fail("cannot open the store at %s: %s", x.data, nb_err_str(rc));
        goto cleanup;
    }
    rc = nb_keys_open(store, &x.keys);
    if (rc) {
        status = fail("cannot load keys from %s: %s", x.data, nb_err_str(rc));
        goto cleanup;
    }
    status = sub->run(&x);
    if (fflush(stdout) != 0 && !status) status = fail("cannot write output");
cleanup:
    nb_keys_close(x.keys);
    nb_store_close(store);
    return status;
}
