/* Batch framing (src/table/multipart.c): the multipart/mixed parser on the
 * request the Python SDK sends (byte-exact capture), its tolerances (bare
 * LF, quoted boundaries, folding, preamble/epilogue) and its refusals
 * (missing boundary, truncation at every length, more than 100 operations,
 * Content-Length mismatches, malformed request lines), then the response
 * writer's success and failure shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/mem.h"
#include "table/multipart.h"

/* --- the captured SDK request (azure-data-tables 12.4.2 submit_transaction:
 * create, upsert replace, upsert merge, update merge, delete) ------------- */

#define BB "batch_0ba07e05-cce6-42ce-a0f2-f24bdee5a525"
#define CS "changeset_3ca38440-f343-40c1-9461-4080f12ce982"
#define OUTER_CT "multipart/mixed; boundary=" BB
#define URL "http://127.0.0.1:10002/devstoreaccount1/mytable"
#define DATES                                                                                      \
    "x-ms-date: Sun, 22 Nov 2026 03:15:36 GMT\r\n"                                                 \
    "Date: Sun, 22 Nov 2026 03:15:36 GMT\r\n"
#define MIME(id)                                                                                   \
    "--" CS "\r\n"                                                                                 \
    "Content-Type: application/http\r\n"                                                           \
    "Content-Transfer-Encoding: binary\r\n"                                                        \
    "Content-ID: " id "\r\n"                                                                       \
    "\r\n"
#define ENTITY(rk, v)                                                                              \
    "{\"PartitionKey\": \"b\", \"PartitionKey@odata.type\": \"Edm.String\", \"RowKey\": \"" rk     \
    "\", \"RowKey@odata.type\": \"Edm.String\", \"V\": " v "}"
#define HEAD "--" BB "\r\nContent-Type: multipart/mixed; boundary=" CS "\r\n\r\n"
#define TAIL "--" CS "--\r\n\r\n--" BB "--\r\n"

static const char sdk_body[] =
    HEAD MIME("0")
    "POST " URL " HTTP/1.1\r\n"
    "x-ms-version: 2019-02-02\r\n"
    "DataServiceVersion: 3.0\r\n"
    "Prefer: return-no-content\r\n"
    "Content-Type: application/json;odata=nometadata\r\n"
    "Accept: application/json;odata=minimalmetadata\r\n"
    "Content-Length: 120\r\n" DATES "\r\n" ENTITY("1", "1") "\r\n"
    MIME("1")
    "PUT " URL "(PartitionKey='b',RowKey='2') HTTP/1.1\r\n"
    "x-ms-version: 2019-02-02\r\n"
    "DataServiceVersion: 3.0\r\n"
    "Content-Type: application/json\r\n"
    "Accept: application/json\r\n"
    "Content-Length: 120\r\n" DATES "\r\n" ENTITY("2", "2") "\r\n"
    MIME("2")
    "PATCH " URL "(PartitionKey='b',RowKey='4') HTTP/1.1\r\n"
    "x-ms-version: 2019-02-02\r\n"
    "DataServiceVersion: 3.0\r\n"
    "Content-Type: application/json\r\n"
    "Accept: application/json\r\n"
    "Content-Length: 120\r\n" DATES "\r\n" ENTITY("4", "4") "\r\n"
    MIME("3")
    "PATCH " URL "(PartitionKey='b',RowKey='2') HTTP/1.1\r\n"
    "x-ms-version: 2019-02-02\r\n"
    "DataServiceVersion: 3.0\r\n"
    "If-Match: *\r\n"
    "Content-Type: application/json\r\n"
    "Accept: application/json\r\n"
    "Content-Length: 120\r\n" DATES "\r\n" ENTITY("2", "3") "\r\n"
    MIME("4")
    "DELETE " URL "(PartitionKey='b',RowKey='3') HTTP/1.1\r\n"
    "x-ms-version: 2019-02-02\r\n"
    "DataServiceVersion: 3.0\r\n"
    "If-Match: *\r\n"
    "Accept: application/json;odata=minimalmetadata\r\n" DATES "\r\n"
    "\r\n" TAIL;

/* One simple operation for hand-built bodies. */
#define OP(id, line, body)                                                                         \
    MIME(id) line "\r\nContent-Length: " #body "\r\n\r\n"

struct fx {
    struct nb_arena arena;
    struct nb_batch bt;
    const char *why;
};

static enum nb_err parse_n(struct fx *f, const char *ct, const char *body, size_t len)
{
    nb_arena_cleanup(&f->arena);
    nb_arena_init(&f->arena);
    f->why = NULL;
    return nb_multipart_parse(ct, body, len, &f->arena, &f->bt, &f->why);
}

static enum nb_err parse(struct fx *f, const char *ct, const char *body)
{
    return parse_n(f, ct, body, strlen(body));
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    nb_arena_init(&f->arena);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nb_arena_cleanup(&f->arena);
    free(f);
    return 0;
}

/* A heap copy of s with every CRLF turned into a bare LF. */
static char *to_lf(const char *s)
{
    char *out = nb_malloc(strlen(s) + 1), *o = out;
    for (; *s; s++)
        if (!(s[0] == '\r' && s[1] == '\n')) *o++ = *s;
    *o = '\0';
    return out;
}

static void assert_body(const struct nb_batch_op *op, const char *want)
{
    assert_int_equal(op->body_len, strlen(want));
    assert_memory_equal(op->body, want, op->body_len);
}

static void check_sdk_ops(const struct nb_batch *bt)
{
    static const char *const methods[] = { "POST", "PUT", "PATCH", "PATCH", "DELETE" };
    static const char *const paths[] = {
        "/devstoreaccount1/mytable",
        "/devstoreaccount1/mytable(PartitionKey='b',RowKey='2')",
        "/devstoreaccount1/mytable(PartitionKey='b',RowKey='4')",
        "/devstoreaccount1/mytable(PartitionKey='b',RowKey='2')",
        "/devstoreaccount1/mytable(PartitionKey='b',RowKey='3')",
    };
    static const char *const ids[] = { "0", "1", "2", "3", "4" };
    assert_int_equal(bt->n, 5);
    for (size_t i = 0; i < 5; i++) {
        const struct nb_batch_op *op = &bt->ops[i];
        assert_string_equal(op->method, methods[i]);
        assert_string_equal(op->path, paths[i]);
        assert_string_equal(op->query, "");
        assert_string_equal(op->content_id, ids[i]);
        assert_string_equal(nb_batch_op_header(op, "x-ms-version"), "2019-02-02");
        assert_string_equal(nb_batch_op_header(op, "DATE"), "Sun, 22 Nov 2026 03:15:36 GMT");
    }
    assert_int_equal(bt->ops[0].nheaders, 8);
    assert_string_equal(bt->ops[0].headers[0].name, "x-ms-version");
    assert_string_equal(bt->ops[0].headers[2].name, "Prefer");
    assert_string_equal(bt->ops[0].headers[2].value, "return-no-content");
    assert_int_equal(bt->ops[0].headers[2].value_len, 17);
    assert_string_equal(nb_batch_op_header(&bt->ops[0], "content-type"),
                        "application/json;odata=nometadata");
    assert_null(nb_batch_op_header(&bt->ops[0], "If-Match"));
    assert_null(nb_batch_op_header(&bt->ops[1], "Prefer"));
    assert_string_equal(nb_batch_op_header(&bt->ops[3], "If-Match"), "*");
    assert_string_equal(nb_batch_op_header(&bt->ops[4], "If-Match"), "*");
    assert_null(nb_batch_op_header(&bt->ops[4], "Content-Length"));
    assert_body(&bt->ops[0], ENTITY("1", "1"));
    assert_body(&bt->ops[1], ENTITY("2", "2"));
    assert_body(&bt->ops[2], ENTITY("4", "4"));
    assert_body(&bt->ops[3], ENTITY("2", "3"));
    assert_body(&bt->ops[4], "");
    assert_non_null(bt->ops[4].body);
}

/* --- parser: accepted input ------------------------------------------------ */

static void test_sdk_capture(void **state)
{
    struct fx *f = *state;
    assert_int_equal(strlen(ENTITY("1", "1")), 120);
    assert_int_equal(parse(f, OUTER_CT, sdk_body), NB_OK);
    assert_null(f->why);
    check_sdk_ops(&f->bt);
    /* Bodies borrow the request body; they are not copies. */
    assert_true(f->bt.ops[0].body > sdk_body && f->bt.ops[0].body < sdk_body + sizeof(sdk_body));
}

static void test_bare_lf(void **state)
{
    struct fx *f = *state;
    char *lf = to_lf(sdk_body);
    assert_int_equal(parse(f, OUTER_CT, lf), NB_OK);
    check_sdk_ops(&f->bt);
    free(lf);
}

static void test_content_type_forms(void **state)
{
    struct fx *f = *state;
    static const char *const ok[] = {
        "multipart/mixed; boundary=" BB,
        "Multipart/Mixed;BOUNDARY=" BB,
        "multipart/mixed; charset=utf-8; boundary=\"" BB "\"",
        "  multipart/mixed ;\tboundary = " BB " ; x=y",
        "multipart/mixed; boundary=\"batch_0ba07e05-cce6-42ce-a0f2-f24bdee5\\a525\"",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(parse(f, ok[i], sdk_body), NB_OK);
        assert_int_equal(f->bt.n, 5);
    }
}

static void test_preamble_epilogue_and_lookalikes(void **state)
{
    struct fx *f = *state;
    /* Text before the first boundary and after the last one is ignored; a
     * line that starts with the boundary but continues is body data. */
    static const char body[] =
        "This is a preamble.\r\n" HEAD
        "preamble of the changeset\r\n"
        MIME("7")
        "PUT /devstoreaccount1/t(PartitionKey='p',RowKey='r')?$format=json HTTP/1.1\r\n"
        "\r\n"
        "--" CS "xyz is not a boundary\r\n"
        "still body\r\n"
        TAIL "epilogue\r\n--" BB "\r\nignored\r\n";
    assert_int_equal(parse(f, OUTER_CT, body), NB_OK);
    assert_int_equal(f->bt.n, 1);
    const struct nb_batch_op *op = &f->bt.ops[0];
    assert_string_equal(op->path, "/devstoreaccount1/t(PartitionKey='p',RowKey='r')");
    assert_string_equal(op->query, "$format=json");
    assert_string_equal(op->content_id, "7");
    assert_int_equal(op->nheaders, 0);
    assert_body(op, "--" CS "xyz is not a boundary\r\nstill body");
}

static void test_url_forms(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *url, *path, *query;
    } cases[] = {
        { "http://127.0.0.1:10002/a/t", "/a/t", "" },
        { "https://acct.table.core.windows.net/t()?x=1&y=%20", "/t()", "x=1&y=%20" },
        { "HTTP://host/a/t(PartitionKey='a%20b',RowKey='c%27%27')", "/a/t(PartitionKey='a%20b',RowKey='c%27%27')", "" },
        { "/a/t?$select=x", "/a/t", "$select=x" },
        { "http://host", "/", "" },
        { "http://host?q", "/", "q" },
        { "http://host/a/t#frag", "/a/t", "" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[1024];
        snprintf(body, sizeof(body),
                 HEAD MIME("1") "DELETE %s HTTP/1.1\r\nIf-Match: *\r\n\r\n\r\n" TAIL, cases[i].url);
        assert_int_equal(parse(f, OUTER_CT, body), NB_OK);
        assert_string_equal(f->bt.ops[0].path, cases[i].path);
        assert_string_equal(f->bt.ops[0].query, cases[i].query);
    }
    static const char *const bad[] = { "ftp:/x", "1http://h/a", "a/t", "http//h/a", "http://h/a b" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[1024];
        snprintf(body, sizeof(body), HEAD MIME("1") "DELETE %s HTTP/1.1\r\n\r\n\r\n" TAIL, bad[i]);
        assert_int_equal(parse(f, OUTER_CT, body), NB_ERR_INVALID);
        assert_non_null(f->why);
    }
}

static void test_headers_folding_and_no_blank_line(void **state)
{
    struct fx *f = *state;
    /* Folded MIME and HTTP headers; the last request ends right after its
     * headers (no blank line, no body) and no Content-ID is given. */
    static const char body[] =
        HEAD "--" CS "\r\nContent-Type:\r\n application/http\r\n\r\n"
        "MERGE /a/t(PartitionKey='p',RowKey='1') HTTP/1.0\r\n"
        "X-Long: one\r\n\ttwo  \r\n \r\n  three\r\n"
        "X-Late:\r\n late\r\n"
        "Content-Length: 2\r\n\r\n{}\r\n"
        "--" CS "\r\n\r\n"
        "\r\n"
        "DELETE /a/t(PartitionKey='p',RowKey='2') HTTP/1.1\r\n"
        "If-Match:   W/\"datetime'x'\"  \r\n" TAIL;
    assert_int_equal(parse(f, OUTER_CT, body), NB_OK);
    assert_int_equal(f->bt.n, 2);
    assert_string_equal(nb_batch_op_header(&f->bt.ops[0], "x-long"), "one two three");
    assert_int_equal(f->bt.ops[0].headers[0].value_len, 13);
    assert_string_equal(nb_batch_op_header(&f->bt.ops[0], "X-Late"), "late");
    assert_body(&f->bt.ops[0], "{}");
    assert_null(f->bt.ops[1].content_id);
    assert_string_equal(f->bt.ops[1].method, "DELETE");
    assert_string_equal(nb_batch_op_header(&f->bt.ops[1], "If-Match"), "W/\"datetime'x'\"");
    assert_body(&f->bt.ops[1], "");
}

static void test_no_content_length_runs_to_boundary(void **state)
{
    struct fx *f = *state;
    static const char body[] = HEAD MIME("0") "POST " URL " HTTP/1.1\r\n\r\n"
                               "{\"a\":\r\n1}\r\n\r\n" TAIL;
    assert_int_equal(parse(f, OUTER_CT, body), NB_OK);
    /* Only the line break that belongs to the delimiter is removed. */
    assert_body(&f->bt.ops[0], "{\"a\":\r\n1}\r\n");
}

static void test_empty_changeset(void **state)
{
    struct fx *f = *state;
    assert_int_equal(parse(f, OUTER_CT, HEAD "--" CS "--\r\n\r\n--" BB "--\r\n"), NB_OK);
    assert_int_equal(f->bt.n, 0);
    /* An empty part right after the opening delimiter is malformed (no
     * request line), not a crash. */
    assert_int_equal(parse(f, OUTER_CT, HEAD "--" CS "\r\n--" CS "--\r\n--" BB "--\r\n"),
                     NB_ERR_INVALID);
}

static void test_hundred_ops(void **state)
{
    struct fx *f = *state;
    for (int total = 99; total <= 102; total++) {
        struct nb_buf b;
        nb_buf_init(&b, 1 << 20);
        nb_buf_adds(&b, HEAD);
        for (int i = 0; i < total; i++)
            nb_buf_printf(&b, MIME("%d") "POST " URL " HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}\r\n",
                          i);
        nb_buf_adds(&b, TAIL);
        enum nb_err rc = parse_n(f, OUTER_CT, b.data, b.len);
        if (total <= 100) {
            assert_int_equal(rc, NB_OK);
            assert_int_equal(f->bt.n, (size_t)total);
            assert_string_equal(f->bt.ops[total - 1].content_id,
                                total == 100 ? "99" : "98");
        } else {
            assert_int_equal(rc, NB_ERR_TOO_LARGE);
            assert_string_equal(
                f->why,
                "The batch request operation exceeds the maximum 100 changes per change set.");
            assert_int_equal(f->bt.n, 100);
        }
        nb_buf_cleanup(&b);
    }
}

/* Inputs built to make a careless parser quadratic: 4 MiB of folded header
 * lines, of boundary look-alikes, of blank lines before a request line. */
static void test_linear_time(void **state)
{
    struct fx *f = *state;
    static const char *const fill[] = { " x\r\n", "--" CS "X\r\n", "\r\n" };
    static const char *const before[] = {
        HEAD MIME("0") "DELETE " URL " HTTP/1.1\r\nX-Fold: a\r\n",
        HEAD MIME("0") "POST " URL " HTTP/1.1\r\n\r\n",
        HEAD MIME("0"),
    };
    static const char *const after[] = {
        "\r\n\r\n" TAIL,
        "\r\n" TAIL,
        "DELETE " URL " HTTP/1.1\r\n\r\n\r\n" TAIL,
    };
    for (size_t k = 0; k < 3; k++) {
        struct nb_buf b;
        nb_buf_init(&b, 5u << 20);
        nb_buf_adds(&b, before[k]);
        while (b.len < (4u << 20)) nb_buf_adds(&b, fill[k]);
        nb_buf_adds(&b, after[k]);
        clock_t t0 = clock();
        assert_int_equal(parse_n(f, OUTER_CT, b.data, b.len), NB_OK);
        assert_int_equal(f->bt.n, 1);
        assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
        nb_buf_cleanup(&b);
    }
}

/* --- parser: refusals -------------------------------------------------------- */

static void expect_invalid(struct fx *f, const char *ct, const char *body)
{
    assert_int_equal(parse(f, ct, body), NB_ERR_INVALID);
    assert_non_null(f->why);
    assert_true(strlen(f->why) > 10);
}

static void test_missing_or_wrong_boundary(void **state)
{
    struct fx *f = *state;
    expect_invalid(f, NULL, sdk_body);
    expect_invalid(f, "", sdk_body);
    expect_invalid(f, "application/json", sdk_body);
    expect_invalid(f, "multipart/mixed", sdk_body);
    expect_invalid(f, "multipart/mixed; boundary=", sdk_body);
    expect_invalid(f, "multipart/mixed; boundary=\"" BB, sdk_body);
    expect_invalid(f, "multipart/mixedx; boundary=" BB, sdk_body);
    expect_invalid(f, "multipart/mixed; boundary=batch_other", sdk_body);
    expect_invalid(f, "multipart/mixed; boundary=" BB BB "xxxxxxxxxxxxxxxxxxxxxxxxxxxx", sdk_body);
    /* The changeset part names no boundary, or a wrong one. */
    expect_invalid(f, OUTER_CT, "--" BB "\r\nContent-Type: multipart/mixed\r\n\r\n" TAIL);
    expect_invalid(f, OUTER_CT,
                   "--" BB "\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n" TAIL);
    expect_invalid(f, OUTER_CT, "--" BB "\r\nContent-Type: application/http\r\n\r\n"
                                "GET " URL "() HTTP/1.1\r\n\r\n\r\n--" BB "--\r\n");
    assert_string_equal(f->why, "Operations outside a changeset are not supported.");
    expect_invalid(f, OUTER_CT, "");
    assert_int_equal(parse_n(f, OUTER_CT, NULL, 0), NB_ERR_INVALID);
}

static void test_changeset_count(void **state)
{
    struct fx *f = *state;
    expect_invalid(f, OUTER_CT, "--" BB "--\r\n");
    assert_string_equal(f->why, "The batch request contains no changeset.");
    expect_invalid(f, OUTER_CT, HEAD "--" CS "--\r\n\r\n" HEAD "--" CS "--\r\n\r\n--" BB "--\r\n");
    assert_string_equal(f->why, "The batch request must contain exactly one changeset.");
}

static void test_truncated_everywhere(void **state)
{
    struct fx *f = *state;
    size_t full = strlen(sdk_body);
    /* Dropping the final CRLF still leaves the closing delimiter whole. */
    assert_int_equal(parse_n(f, OUTER_CT, sdk_body, full - 2), NB_OK);
    assert_int_equal(f->bt.n, 5);
    for (size_t len = 0; len < full - 2; len++) {
        /* A heap copy of exactly len bytes lets ASan catch any overread. */
        char *cut = nb_malloc(len ? len : 1);
        memcpy(cut, sdk_body, len);
        enum nb_err rc = parse_n(f, OUTER_CT, cut, len);
        if (rc != NB_ERR_INVALID) fail_msg("prefix of %zu bytes parsed (rc %d)", len, rc);
        free(cut);
    }
}

static void test_truncated_parts(void **state)
{
    struct fx *f = *state;
    /* MIME headers without the blank line before the request. */
    expect_invalid(f, OUTER_CT, HEAD "--" CS "\r\nContent-Type: application/http\r\n" TAIL);
    /* MIME headers and nothing else. */
    expect_invalid(f, OUTER_CT, HEAD MIME("1") TAIL);
    /* The changeset never closes, the batch does. */
    expect_invalid(f, OUTER_CT, HEAD MIME("1") "DELETE " URL "(PartitionKey='b',RowKey='3') HTTP/1.1\r\n\r\n\r\n--" BB "--\r\n");
}

static void test_content_length(void **state)
{
    struct fx *f = *state;
#define CL_BODY(cl, data) HEAD MIME("0") "POST " URL " HTTP/1.1\r\nContent-Length: " cl "\r\n\r\n" data "\r\n" TAIL
    /* Exact. */
    assert_int_equal(parse(f, OUTER_CT, CL_BODY("4", "{}{}")), NB_OK);
    assert_body(&f->bt.ops[0], "{}{}");
    /* Shorter, followed only by line breaks and blanks: the rest is ignored. */
    assert_int_equal(parse(f, OUTER_CT, CL_BODY("2", "{}\r\n \t\n")), NB_OK);
    assert_body(&f->bt.ops[0], "{}");
    assert_int_equal(parse(f, OUTER_CT, CL_BODY("0", "")), NB_OK);
    assert_body(&f->bt.ops[0], "");
    /* Shorter with data after it, longer than the part, not a number. */
    expect_invalid(f, OUTER_CT, CL_BODY("2", "{}{}"));
    expect_invalid(f, OUTER_CT, CL_BODY("5", "{}{}"));
    expect_invalid(f, OUTER_CT, CL_BODY("99999999999999999999999", "{}"));
    expect_invalid(f, OUTER_CT, CL_BODY("-1", "{}"));
    expect_invalid(f, OUTER_CT, CL_BODY("2x", "{}"));
    expect_invalid(f, OUTER_CT, CL_BODY("", "{}"));
    expect_invalid(f, OUTER_CT, HEAD MIME("0") "POST " URL " HTTP/1.1\r\nContent-Length: 2\r\n"
                                "Content-Length: 2\r\n\r\n{}\r\n" TAIL);
    expect_invalid(f, OUTER_CT, HEAD MIME("0") "POST " URL " HTTP/1.1\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n\r\n" TAIL);
#undef CL_BODY
}

static void test_bad_request_lines_and_parts(void **state)
{
    struct fx *f = *state;
    static const char *const lines[] = {
        "POST " URL,                 /* no version */
        "POST " URL " HTTP/2.0",     /* not HTTP/1.x */
        "POST " URL " http/1.1",     /* case matters */
        "POST  " URL " HTTP/1.1",    /* empty URL between two spaces */
        "POST " URL " HTTP/1.1 x",   /* extra token */
        "PO(T " URL " HTTP/1.1",     /* not a token */
        "VERYLONGMETHODNAME1 " URL " HTTP/1.1",
        " " URL " HTTP/1.1",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        char body[1024];
        snprintf(body, sizeof(body), HEAD MIME("0") "%s\r\n\r\n\r\n" TAIL, lines[i]);
        expect_invalid(f, OUTER_CT, body);
    }
    /* Headers that are not "name: value", a fold with nothing to continue. */
    expect_invalid(f, OUTER_CT, HEAD MIME("0") "DELETE " URL " HTTP/1.1\r\nno colon\r\n\r\n\r\n" TAIL);
    expect_invalid(f, OUTER_CT, HEAD MIME("0") "DELETE " URL " HTTP/1.1\r\nBad Name: x\r\n\r\n\r\n" TAIL);
    expect_invalid(f, OUTER_CT, HEAD MIME("0") "DELETE " URL " HTTP/1.1\r\n: x\r\n\r\n\r\n" TAIL);
    expect_invalid(f, OUTER_CT, HEAD "--" CS "\r\n folded: x\r\n\r\nDELETE " URL " HTTP/1.1\r\n\r\n\r\n" TAIL);
    /* A NUL inside a header value (values are C strings). */
    static const char nul[] = HEAD MIME("0") "DELETE " URL " HTTP/1.1\r\nX: a\0b\r\n\r\n\r\n" TAIL;
    assert_int_equal(parse_n(f, OUTER_CT, nul, sizeof(nul) - 1), NB_ERR_INVALID);
    /* Parts that are not application/http in binary. */
    expect_invalid(f, OUTER_CT, HEAD "--" CS "\r\nContent-Type: text/plain\r\n\r\nDELETE " URL " HTTP/1.1\r\n\r\n\r\n" TAIL);
    expect_invalid(f, OUTER_CT, HEAD "--" CS "\r\nContent-Transfer-Encoding: base64\r\n\r\nDELETE " URL " HTTP/1.1\r\n\r\n\r\n" TAIL);
    /* Too many headers in one request. */
    struct nb_buf b;
    nb_buf_init(&b, 1 << 20);
    nb_buf_adds(&b, HEAD MIME("0") "DELETE " URL " HTTP/1.1\r\n");
    for (int i = 0; i <= NB_MULTIPART_MAX_HEADERS; i++) nb_buf_printf(&b, "X-H%d: v\r\n", i);
    nb_buf_adds(&b, "\r\n\r\n" TAIL);
    assert_int_equal(parse_n(f, OUTER_CT, b.data, b.len), NB_ERR_INVALID);
    nb_buf_cleanup(&b);
}

/* --- writer ------------------------------------------------------------------ */

#define RB "batchresponse_11111111-2222-4333-8444-555555555555"
#define RCS "changesetresponse_66666666-7777-4888-9999-000000000000"
#define ETAG1 "W/\"datetime'2026-11-22T01%3A33%3A05.6148770Z'\""

static void test_reason_phrases(void **state)
{
    (void)state;
    assert_string_equal(nb_multipart_reason(204), "No Content");
    assert_string_equal(nb_multipart_reason(201), "Created");
    assert_string_equal(nb_multipart_reason(409), "Conflict");
    assert_string_equal(nb_multipart_reason(412), "Precondition Failed");
    assert_string_equal(nb_multipart_reason(413), "Request Entity Too Large");
    assert_string_equal(nb_multipart_reason(999), "Unknown");
}

static void test_write_success(void **state)
{
    struct fx *f = *state;
    const struct nb_kv h0[] = {
        { "Content-ID", "0", 0 },
        { "X-Content-Type-Options", "nosniff", 0 },
        { "Cache-Control", "no-cache", 0 },
        { "Preference-Applied", "return-no-content", 0 },
        { "DataServiceVersion", "3.0;", 0 },
        { "ETag", ETAG1, 0 },
    };
    const struct nb_kv h1[] = {
        { "X-Content-Type-Options", "nosniff", 0 },
        { "Cache-Control", "no-cache", 0 },
        { "DataServiceVersion", "3.0;", 0 },
        { "Content-Type", "application/json;odata=minimalmetadata;streaming=true;charset=utf-8", 0 },
    };
    const struct nb_batch_result res[] = {
        { 204, h0, 6, NULL, 0 },
        { 201, h1, 4, "{\"PartitionKey\":\"b\"}", 20 },
        { 204, NULL, 0, "", 0 },
    };
    struct nb_buf out;
    nb_buf_init(&out, 1 << 16);
    nb_buf_adds(&out, "keep:");
    const char *ct = NULL;
    assert_int_equal(nb_multipart_write_response(res, 3, RB + 14, RCS + 18, &f->arena, &out, &ct),
                     NB_OK);
    assert_string_equal(ct, "multipart/mixed; boundary=" RB);
    assert_string_equal(nb_buf_cstr(&out),
                        "keep:"
                        "--" RB "\r\n"
                        "Content-Type: multipart/mixed; boundary=" RCS "\r\n"
                        "\r\n"
                        "--" RCS "\r\n"
                        "Content-Type: application/http\r\n"
                        "Content-Transfer-Encoding: binary\r\n"
                        "\r\n"
                        "HTTP/1.1 204 No Content\r\n"
                        "Content-ID: 0\r\n"
                        "X-Content-Type-Options: nosniff\r\n"
                        "Cache-Control: no-cache\r\n"
                        "Preference-Applied: return-no-content\r\n"
                        "DataServiceVersion: 3.0;\r\n"
                        "ETag: " ETAG1 "\r\n"
                        "\r\n"
                        "\r\n"
                        "--" RCS "\r\n"
                        "Content-Type: application/http\r\n"
                        "Content-Transfer-Encoding: binary\r\n"
                        "\r\n"
                        "HTTP/1.1 201 Created\r\n"
                        "X-Content-Type-Options: nosniff\r\n"
                        "Cache-Control: no-cache\r\n"
                        "DataServiceVersion: 3.0;\r\n"
                        "Content-Type: application/json;odata=minimalmetadata;streaming=true;"
                        "charset=utf-8\r\n"
                        "\r\n"
                        "{\"PartitionKey\":\"b\"}\r\n"
                        "--" RCS "\r\n"
                        "Content-Type: application/http\r\n"
                        "Content-Transfer-Encoding: binary\r\n"
                        "\r\n"
                        "HTTP/1.1 204 No Content\r\n"
                        "\r\n"
                        "\r\n"
                        "--" RCS "--\r\n"
                        "--" RB "--\r\n");
    nb_buf_cleanup(&out);
}

static void test_write_failure_and_limit(void **state)
{
    struct fx *f = *state;
    static const char err[] =
        "{\"odata.error\":{\"code\":\"EntityAlreadyExists\",\"message\":{\"lang\":\"en-US\","
        "\"value\":\"1:The specified entity already exists.\\nRequestId:x\\nTime:y\"}}}";
    const struct nb_kv h[] = {
        { "Content-ID", "1", 0 },
        { "Content-Type", "application/json;odata=minimalmetadata;streaming=true;charset=utf-8", 0 },
    };
    const struct nb_batch_result r = { 409, h, 2, err, sizeof(err) - 1 };
    struct nb_buf out;
    nb_buf_init(&out, 1 << 16);
    const char *ct = NULL;
    assert_int_equal(nb_multipart_write_response(&r, 1, "B", "C", &f->arena, &out, &ct), NB_OK);
    assert_string_equal(ct, "multipart/mixed; boundary=batchresponse_B");
    assert_string_equal(nb_buf_cstr(&out),
                        "--batchresponse_B\r\n"
                        "Content-Type: multipart/mixed; boundary=changesetresponse_C\r\n"
                        "\r\n"
                        "--changesetresponse_C\r\n"
                        "Content-Type: application/http\r\n"
                        "Content-Transfer-Encoding: binary\r\n"
                        "\r\n"
                        "HTTP/1.1 409 Conflict\r\n"
                        "Content-ID: 1\r\n"
                        "Content-Type: application/json;odata=minimalmetadata;streaming=true;"
                        "charset=utf-8\r\n"
                        "\r\n" "{\"odata.error\":{\"code\":\"EntityAlreadyExists\",\"message\":{\"lang\":"
                        "\"en-US\",\"value\":\"1:The specified entity already exists.\\nRequestId:x"
                        "\\nTime:y\"}}}\r\n"
                        "--changesetresponse_C--\r\n"
                        "--batchresponse_B--\r\n");
    size_t whole = out.len;
    nb_buf_cleanup(&out);

    /* A buffer too small for the response is left as it was. */
    for (size_t max = 0; max < whole; max += 37) {
        nb_buf_init(&out, max);
        ct = "unchanged";
        assert_int_equal(nb_multipart_write_response(&r, 1, "B", "C", &f->arena, &out, &ct),
                         NB_ERR_TOO_LARGE);
        assert_int_equal(out.len, 0);
        assert_string_equal(ct, "unchanged");
        nb_buf_cleanup(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sdk_capture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_lf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_type_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preamble_epilogue_and_lookalikes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_folding_and_no_blank_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_content_length_runs_to_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_changeset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hundred_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linear_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_or_wrong_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changeset_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_request_lines_and_parts, setup, teardown),
        cmocka_unit_test(test_reason_phrases),
        cmocka_unit_test_setup_teardown(test_write_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_and_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
