/* Binding expressions, table input and queue/table outputs (bindings.h).
 * Owns nothing between calls; every write goes through the store. */
#include "host/bindings.h"
#include "core/arena.h"
#include "core/encode.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timefmt.h"
#include "store/store.h"
#include "table/entity.h"
#include "table/filter.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QUEUE_TTL_MS (7LL * 24 * 3600 * 1000) /* the SDK's default message TTL */
#define TABLE_INPUT_MAX 1000                  /* rows a table input returns at most */

/* --- binding data ----------------------------------------------------------- */

static void merge_object_props(json_t *data, const char *text, size_t len)
{
    if (!text || !len) return;
    json_t *doc = json_loadb(text, len, 0, NULL);
    if (json_is_object(doc)) {
        const char *k;
        json_t *v;
        json_object_foreach(doc, k, v) {
            if (!json_object_get(data, k)) json_object_set(data, k, v);
        }
    }
    json_decref(doc);
}

json_t *nb_bind_data(const struct nb_invocation *inv)
{
    json_t *data = json_object();
    if (inv->kind == NB_TRIGGER_HTTP) {
        json_t *q = json_object(), *h = json_object();
        for (size_t i = 0; i < inv->nparams; i++)
            if (inv->params[i].value)
                json_object_set_new(data, inv->params[i].name, json_string(inv->params[i].value));
        for (size_t i = 0; i < inv->nquery; i++)
            json_object_set_new(q, inv->query[i].name,
                                json_stringn(inv->query[i].value, inv->query[i].value_len));
        for (size_t i = 0; i < inv->nheaders; i++)
            json_object_set_new(h, inv->headers[i].name, json_string(inv->headers[i].value));
        json_object_set_new(data, "Query", q);
        json_object_set_new(data, "Headers", h);
        merge_object_props(data, inv->body, inv->body_len);
    } else {
        json_t *meta = json_loads(inv->metadata_json ? inv->metadata_json : "{}", 0, NULL);
        if (json_is_object(meta)) json_object_update(data, meta);
        json_decref(meta);
        merge_object_props(data, inv->trigger_data, inv->trigger_len);
    }
    char guid[37];
    nb_random_uuid(guid);
    json_object_set_new(data, "rand-guid", json_string(guid));
    return data;
}

static const json_t *get_ci(const json_t *obj, const char *name, size_t len)
{
    if (!json_is_object(obj)) return NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (strlen(k) == len && strncasecmp(k, name, len) == 0) return v;
    }
    return NULL;
}

static const json_t *lookup_path(const json_t *data, const char *expr, size_t len)
{
    /* The whole expression first: header and property names may hold dots. */
    const json_t *whole = get_ci(data, expr, len);
    if (whole) return whole;
    const char *dot = memchr(expr, '.', len);
    if (!dot) return NULL;
    const json_t *head = get_ci(data, expr, (size_t)(dot - expr));
    if (!head) return NULL;
    return lookup_path(head, dot + 1, len - (size_t)(dot - expr) - 1);
}

char *nb_bind_expand(const json_t *data, const char *tmpl, char **missing)
{
    if (missing) *missing = NULL;
    if (!tmpl) return NULL;
    struct nb_buf out;
    nb_buf_init(&out, 1u << 20);
    const char *p = tmpl;
    while (*p) {
        const char *open = strchr(p, '{');
        const char *close = open ? strchr(open, '}') : NULL;
        if (!open || !close) {
            nb_buf_adds(&out, p);
            break;
        }
        nb_buf_add(&out, p, (size_t)(open - p));
        const json_t *v = lookup_path(data, open + 1, (size_t)(close - open - 1));
        if (json_is_string(v)) {
            nb_buf_add(&out, json_string_value(v), json_string_length(v));
        } else if (json_is_integer(v)) {
            nb_buf_printf(&out, "%lld", (long long)json_integer_value(v));
        } else if (json_is_real(v)) {
            nb_buf_printf(&out, "%g", json_real_value(v));
        } else if (json_is_boolean(v)) {
            nb_buf_adds(&out, json_is_true(v) ? "true" : "false");
        } else {
            if (missing) *missing = nb_strndup(open + 1, (size_t)(close - open - 1));
            nb_buf_cleanup(&out);
            return NULL;
        }
        p = close + 1;
    }
    size_t n;
    char *s = nb_buf_detach(&out, &n);
    return s ? s : nb_strdup("");
}

/* --- table input ---------------------------------------------------------------- */

static char *expand_or_fail(const json_t *data, const char *tmpl, const struct nb_binding *b,
                            struct nb_inv_result *res);

/* The text of a scalar binding value, or NULL for objects, arrays and null. */
static char *scalar_text(const json_t *v)
{
    if (json_is_string(v)) return nb_strndup(json_string_value(v), json_string_length(v));
    if (json_is_integer(v)) return nb_asprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v)) return nb_asprintf("%.17g", json_real_value(v));
    if (json_is_boolean(v)) return nb_strdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

static bool is_number_or_bool(const char *s)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) return true;
    char *end = NULL;
    if (!*s) return false;
    (void)strtod(s, &end);
    return *end == '\0';
}

/* A table binding's `filter` with {expr} filled in, escaped as Azure's
 * TableFilterFormatter does so a value cannot change the query: inside a
 * quoted literal, ' is doubled; outside quotes only a number or a boolean
 * is allowed; a filter that is exactly "{expr}" is taken as given. NULL
 * (with res failed) when a value is missing or not allowed. */
static char *expand_filter(const json_t *data, const struct nb_binding *b,
                           struct nb_inv_result *res)
{
    const char *tmpl = b->filter;
    size_t tl = strlen(tmpl);
    if (tl > 2 && tmpl[0] == '{' && tmpl[tl - 1] == '}' && !memchr(tmpl + 1, '{', tl - 2))
        return expand_or_fail(data, tmpl, b, res);
    struct nb_buf out;
    nb_buf_init(&out, 1u << 20);
    bool quoted = false;
    for (const char *p = tmpl; *p;) {
        if (*p == '\'') {
            quoted = !quoted; /* '' inside a literal toggles twice */
            nb_buf_addc(&out, *p++);
            continue;
        }
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (!close) {
            nb_buf_addc(&out, *p++);
            continue;
        }
        char *expr = nb_strndup(p + 1, (size_t)(close - p - 1));
        char *text = scalar_text(lookup_path(data, expr, strlen(expr)));
        if (!text || (!quoted && !is_number_or_bool(text))) {
            nb_inv_result_fail(res, text ? "binding '%s': {%s} outside quotes must be a number "
                                           "or a boolean"
                                         : "binding '%s': no value for {%s}",
                               b->name, expr);
            free(text);
            free(expr);
            nb_buf_cleanup(&out);
            return NULL;
        }
        for (const char *c = text; *c; c++) {
            if (*c == '\'') nb_buf_addc(&out, '\'');
            nb_buf_addc(&out, *c);
        }
        free(text);
        free(expr);
        p = close + 1;
    }
    size_t n;
    char *r = nb_buf_detach(&out, &n);
    return r ? r : nb_strdup("");
}

static char *expand_or_fail(const json_t *data, const char *tmpl, const struct nb_binding *b,
                            struct nb_inv_result *res)
{
    char *missing = NULL;
    char *s = nb_bind_expand(data, tmpl, &missing);
    if (!s) {
        nb_inv_result_fail(res, "binding '%s': no value for {%s}", b->name,
                           missing ? missing : "?");
        free(missing);
    }
    return s;
}

static enum nb_err entity_json(const struct nb_entity_row *row, struct nb_buf *out)
{
    struct nb_arena arena;
    nb_arena_init(&arena);
    struct nb_entity e = { 0 };
    e.pk = row->pk;
    e.pk_len = row->pk_len;
    e.rk = row->rk;
    e.rk_len = row->rk_len;
    e.timestamp = row->timestamp;
    enum nb_err rc = nb_entity_decode(row->data, row->data_len, &arena, &e);
    if (rc == NB_OK) {
        struct nb_entity_json_opts o = { .level = NB_META_NONE };
        rc = nb_entity_to_json(&e, &o, out);
    }
    nb_arena_cleanup(&arena);
    return rc;
}

static bool row_match(void *ctx, const struct nb_entity_row *row)
{
    return nb_filter_eval(ctx, nb_entity_row_lookup, (void *)row);
}

static enum nb_err table_input(const struct nb_bind_env *env, const struct nb_binding *b,
                               const json_t *data, struct nb_buf *out, bool *found,
                               struct nb_inv_result *res)
{
    enum nb_err rc = NB_ERR_INVALID;
    char *table = NULL, *pk = NULL, *rk = NULL, *filter_text = NULL;
    struct nb_filter *filter = NULL;
    *found = false;
    const char *account = env->account_of(env->ctx, b);
    if (!account) {
        nb_inv_result_fail(res, "binding '%s': connection is not a Nimbus storage account",
                           b->name);
        goto cleanup;
    }
    if (!(table = expand_or_fail(data, b->table_name, b, res))) goto cleanup;
    /* A key expression with no value (e.g. {Query.code} without ?code=)
     * cannot name an entity: the input is absent and the function runs. */
    if ((b->partition_key && !(pk = nb_bind_expand(data, b->partition_key, NULL))) ||
        (b->row_key && !(rk = nb_bind_expand(data, b->row_key, NULL)))) {
        rc = NB_OK;
        goto cleanup;
    }
    if (b->filter && !(filter_text = expand_filter(data, b, res))) goto cleanup;

    if (pk && rk) {
        struct nb_entity_row row = { 0 };
        rc = nb_store_entity_get(env->store, account, table, pk, strlen(pk), rk, strlen(rk),
                                 &row);
        if (rc == NB_ERR_NOT_FOUND || rc == NB_ERR_NO_PARENT) {
            rc = NB_OK; /* absent: the function sees no value */
            goto cleanup;
        }
        if (rc == NB_OK) {
            rc = entity_json(&row, out);
            *found = rc == NB_OK;
        }
        nb_entity_row_cleanup(&row);
        if (rc) nb_inv_result_fail(res, "binding '%s': %s", b->name, nb_err_str(rc));
        goto cleanup;
    }

    if (filter_text && *filter_text) {
        char err[256] = "";
        if (nb_filter_parse(filter_text, strlen(filter_text), &filter, err, sizeof(err))) {
            nb_inv_result_fail(res, "binding '%s': bad filter: %s", b->name, err);
            rc = NB_ERR_INVALID;
            goto cleanup;
        }
    }
    size_t limit = b->take > 0 && b->take < TABLE_INPUT_MAX ? (size_t)b->take : TABLE_INPUT_MAX;
    struct nb_entity_scan scan = { 0 };
    if (pk) {
        scan.pk_lo = (struct nb_store_key_bound){ true, true, pk, strlen(pk) };
        scan.pk_hi = scan.pk_lo;
    }
    scan.max = limit;
    scan.match = filter ? row_match : NULL;
    scan.match_ctx = filter;
    nb_buf_addc(out, '[');
    size_t n = 0;
    char *next_pk = NULL, *next_rk = NULL;
    size_t next_pk_len = 0, next_rk_len = 0;
    rc = NB_OK;
    while (n < limit) {
        struct nb_entity_rows rows = { 0 };
        scan.max = limit - n;
        scan.start_pk = next_pk;
        scan.start_pk_len = next_pk_len;
        scan.start_rk = next_rk;
        scan.start_rk_len = next_rk_len;
        rc = nb_store_entity_query(env->store, account, table, &scan, &rows);
        if (rc == NB_ERR_NO_PARENT) {
            rc = NB_OK;
            break;
        }
        if (rc) break;
        for (size_t i = 0; i < rows.n && rc == NB_OK; i++, n++) {
            if (n) nb_buf_addc(out, ',');
            rc = entity_json(&rows.items[i], out);
        }
        free(next_pk);
        free(next_rk);
        next_pk = rows.next_pk, next_rk = rows.next_rk;
        next_pk_len = rows.next_pk_len, next_rk_len = rows.next_rk_len;
        rows.next_pk = rows.next_rk = NULL;
        nb_entity_rows_cleanup(&rows);
        if (!next_pk) break;
    }
    free(next_pk);
    free(next_rk);
    nb_buf_addc(out, ']');
    if (rc) nb_inv_result_fail(res, "binding '%s': %s", b->name, nb_err_str(rc));
    else *found = true;

cleanup:
    nb_filter_free(filter);
    free(table);
    free(pk);
    free(rk);
    free(filter_text);
    return rc;
}

enum nb_err nb_bind_inputs(const struct nb_bind_env *env, const struct nb_function *fn,
                           const json_t *data, struct nb_kv **inputs, size_t *ninputs,
                           struct nb_inv_result *res)
{
    *inputs = NULL;
    *ninputs = 0;
    for (size_t i = 0; i < fn->nbindings; i++) {
        const struct nb_binding *b = &fn->bindings[i];
        if (b->out || b->type != NB_BIND_TABLE) continue;
        struct nb_buf out;
        nb_buf_init(&out, 64u << 20);
        bool found = false;
        enum nb_err rc = table_input(env, b, data, &out, &found, res);
        if (rc) {
            nb_buf_cleanup(&out);
            nb_bind_inputs_free(*inputs, *ninputs);
            *inputs = NULL;
            *ninputs = 0;
            return rc;
        }
        if (found) {
            *inputs = nb_realloc(*inputs, (*ninputs + 1) * sizeof(**inputs));
            size_t len;
            char *text = nb_buf_detach(&out, &len);
            (*inputs)[*ninputs] = (struct nb_kv){ nb_strdup(b->name), text ? text : nb_strdup(""),
                                                  text ? len : 0 };
            (*ninputs)++;
        }
        nb_buf_cleanup(&out);
    }
    return NB_OK;
}

void nb_bind_inputs_free(struct nb_kv *inputs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)inputs[i].name);
        free((char *)inputs[i].value);
    }
    free(inputs);
}

/* --- outputs ------------------------------------------------------------------------ */

static enum nb_err queue_output(const struct nb_bind_env *env, const struct nb_binding *b,
                                const json_t *data, const struct nb_inv_output *o,
                                struct nb_inv_result *res)
{
    const char *account = env->account_of(env->ctx, b);
    if (!account) {
        nb_inv_result_fail(res, "binding '%s': connection is not a Nimbus storage account",
                           b->name);
        return NB_ERR_INVALID;
    }
    if (o->visibility_ms < 0 || o->visibility_ms >= QUEUE_TTL_MS) {
        /* Azure rejects a visibility timeout that is not below the TTL: the
         * message would expire before anyone could see it. */
        nb_inv_result_fail(res, "binding '%s': a visibility delay must be under 7 days", b->name);
        return NB_ERR_RANGE;
    }
    char *queue = expand_or_fail(data, b->queue_name, b, res);
    if (!queue) return NB_ERR_INVALID;
    nb_time_ms now = nb_clock_now(env->clock);
    char *encoded = env->app->queues.base64 ? nb_base64_encode(o->value, o->len) : NULL;
    struct nb_msg_put in = { encoded ? encoded : o->value, encoded ? strlen(encoded) : o->len,
                             o->visibility_ms > 0 ? o->visibility_ms : 0, QUEUE_TTL_MS };
    struct nb_msg m;
    memset(&m, 0, sizeof(m));
    enum nb_err rc = nb_store_msg_put(env->store, account, queue, &in, now, &m);
    if (rc == NB_ERR_NO_PARENT) {
        /* As the Azure binding does: create the queue on first use. */
        enum nb_err c = nb_store_queue_create(env->store, account, queue, "", now);
        if (c == NB_OK || c == NB_ERR_EXISTS || c == NB_ERR_EXISTS_SAME)
            rc = nb_store_msg_put(env->store, account, queue, &in, now, &m);
    }
    if (rc) nb_inv_result_fail(res, "binding '%s': queue '%s': %s", b->name, queue,
                               nb_err_str(rc));
    else nb_notify_signal(env->wake);
    free(encoded);
    free(queue);
    return rc;
}

static enum nb_err table_output_one(const struct nb_bind_env *env, const struct nb_binding *b,
                                    const json_t *data, json_t *obj, struct nb_inv_result *res)
{
    enum nb_err rc = NB_ERR_INVALID;
    char *table = NULL, *pk = NULL, *rk = NULL, *text = NULL;
    struct nb_arena arena;
    nb_arena_init(&arena);
    struct nb_buf enc;
    nb_buf_init(&enc, 2u * NB_ENTITY_MAX_SIZE);
    const char *account = env->account_of(env->ctx, b);
    if (!account) {
        nb_inv_result_fail(res, "binding '%s': connection is not a Nimbus storage account",
                           b->name);
        goto cleanup;
    }
    if (!json_is_object(obj)) {
        nb_inv_result_fail(res, "binding '%s': a table output must be a JSON object", b->name);
        goto cleanup;
    }
    if (!(table = expand_or_fail(data, b->table_name, b, res))) goto cleanup;
    /* Keys from the object win; the binding's fill in what it lacks. */
    if (!json_object_get(obj, "PartitionKey") && b->partition_key) {
        if (!(pk = expand_or_fail(data, b->partition_key, b, res))) goto cleanup;
        json_object_set_new(obj, "PartitionKey", json_string(pk));
    }
    if (!json_object_get(obj, "RowKey") && b->row_key) {
        if (!(rk = expand_or_fail(data, b->row_key, b, res))) goto cleanup;
        json_object_set_new(obj, "RowKey", json_string(rk));
    }
    const json_t *op = json_object_get(obj, "@nimbus.operation");
    bool del = json_is_string(op) && strcasecmp(json_string_value(op), "delete") == 0;
    json_object_del(obj, "@nimbus.operation");
    text = json_dumps(obj, JSON_COMPACT);
    struct nb_entity e;
    const char *code = NULL, *msg = NULL;
    rc = nb_entity_from_json(text, strlen(text), &arena, &e, &code, &msg);
    if (rc) {
        nb_inv_result_fail(res, "binding '%s': %s: %s", b->name, code ? code : "InvalidInput",
                           msg ? msg : "bad entity");
        goto cleanup;
    }
    if (!e.pk || !e.rk) {
        nb_inv_result_fail(res, "binding '%s': the entity needs PartitionKey and RowKey",
                           b->name);
        rc = NB_ERR_INVALID;
        goto cleanup;
    }
    if ((rc = nb_entity_encode(&e, &enc))) goto cleanup;
    nb_time_ms now = nb_clock_now(env->clock);
    struct nb_entity_op eop = { .kind = del ? NB_ENTITY_DELETE : NB_ENTITY_INSERT,
                                .pk = e.pk, .pk_len = e.pk_len, .rk = e.rk, .rk_len = e.rk_len,
                                .data = enc.data, .data_len = enc.len,
                                .if_match = del ? NB_IF_MATCH_ANY : NB_IF_MATCH_NONE };
    size_t failed = 0;
    rc = nb_store_entity_write(env->store, account, table, &eop, 1, NULL, now, &failed);
    if (rc == NB_ERR_NO_PARENT && !del) {
        enum nb_err c = nb_store_table_create(env->store, account, table, now);
        if (c == NB_OK || c == NB_ERR_EXISTS)
            rc = nb_store_entity_write(env->store, account, table, &eop, 1, NULL, now, &failed);
    }
    if (del && (rc == NB_ERR_NOT_FOUND || rc == NB_ERR_NO_PARENT)) rc = NB_OK;
    if (rc) nb_inv_result_fail(res, "binding '%s': table '%s': %s", b->name, table,
                               rc == NB_ERR_EXISTS ? "the entity already exists"
                                                   : nb_err_str(rc));

cleanup:
    free(text);
    free(table);
    free(pk);
    free(rk);
    nb_buf_cleanup(&enc);
    nb_arena_cleanup(&arena);
    return rc;
}

static enum nb_err table_output(const struct nb_bind_env *env, const struct nb_binding *b,
                                const json_t *data, const struct nb_inv_output *o,
                                struct nb_inv_result *res)
{
    json_error_t jerr;
    json_t *doc = json_loadb(o->value, o->len, 0, &jerr);
    if (!doc) {
        nb_inv_result_fail(res, "binding '%s': not JSON: %s", b->name, jerr.text);
        return NB_ERR_INVALID;
    }
    enum nb_err rc = NB_OK;
    if (json_is_array(doc)) {
        size_t i;
        json_t *v;
        json_array_foreach(doc, i, v) {
            if ((rc = table_output_one(env, b, data, v, res))) break;
        }
    } else {
        rc = table_output_one(env, b, data, doc, res);
    }
    json_decref(doc);
    return rc;
}

enum nb_err nb_bind_outputs(const struct nb_bind_env *env, const struct nb_function *fn,
                            const json_t *data, struct nb_inv_result *res)
{
    for (size_t i = 0; i < res->noutputs; i++) {
        const struct nb_inv_output *o = &res->outputs[i];
        const struct nb_binding *b = nb_function_binding(fn, o->binding);
        if (!b || !b->out) continue; /* values for unknown bindings are dropped, as Azure */
        enum nb_err rc = NB_OK;
        if (b->type == NB_BIND_QUEUE) rc = queue_output(env, b, data, o, res);
        else if (b->type == NB_BIND_TABLE) rc = table_output(env, b, data, o, res);
        if (rc) return rc;
    }
    return NB_OK;
}
