/* Framing for the host <-> native worker socket (see worker.h).
 *
 * A frame is a u32 little-endian payload length followed by the payload; a
 * payload is a sequence of fields, each a u32 little-endian length, that many
 * bytes, and one NUL byte the length does not count. The NUL lets a reader
 * hand out C strings that point into the frame without copying, while the
 * length keeps binary values (bodies, queue messages) intact. Integers are
 * fields of exactly four or eight bytes (little-endian). Payloads are at most
 * NB_IPC_MAX_FRAME bytes; the reader never looks past the payload it was
 * given and rejects anything malformed with NB_ERR_INVALID.
 *
 * The protocol over a socket is strictly one request, one reply, so a
 * receiver never sees bytes of a second frame; one that does treats the peer
 * as broken. This module owns no process or pool state. */
#ifndef NB_HOST_IPC_H
#define NB_HOST_IPC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/err.h"

#define NB_IPC_MAX_FRAME (128u * 1024 * 1024) /* payload bytes */
#define NB_IPC_HEADER 4u                      /* frame length word */
#define NB_IPC_FIELD_OVERHEAD 5u              /* field length word + NUL */
/* nb_ipc_recv_frame's code for a deadline that passed (there is no timeout
 * code in enum nb_err; NB_ERR_RANGE is otherwise unused here). */
#define NB_IPC_TIMEOUT NB_ERR_RANGE

/* Append one field (length, bytes, NUL) to b. NB_ERR_TOO_LARGE when b's
 * maximum would be passed; b is then unchanged. */
enum nb_err nb_ipc_field_append(struct nb_buf *b, const void *p, size_t n);

/* Builds one frame at a time in a reusable buffer. The first failure is
 * sticky: later puts do nothing and nb_ipc_end reports it, so callers check
 * once per frame. */
struct nb_ipc_writer {
    struct nb_buf buf; /* header + payload once nb_ipc_end succeeded */
    enum nb_err err;
};

void nb_ipc_writer_init(struct nb_ipc_writer *w);
void nb_ipc_writer_cleanup(struct nb_ipc_writer *w);
/* Start a new frame, dropping the previous one (and its storage if it was
 * large, so one big reply does not pin memory for the worker's lifetime). */
void nb_ipc_begin(struct nb_ipc_writer *w);
void nb_ipc_put(struct nb_ipc_writer *w, const void *p, size_t n);
void nb_ipc_put_str(struct nb_ipc_writer *w, const char *s); /* NULL puts "" */
void nb_ipc_put_u32(struct nb_ipc_writer *w, uint32_t v);
void nb_ipc_put_u64(struct nb_ipc_writer *w, uint64_t v);
/* Append bytes that are already encoded fields (built with
 * nb_ipc_field_append), as they are. */
void nb_ipc_put_raw(struct nb_ipc_writer *w, const void *p, size_t n);
/* Finish the frame: fill in the length word. NB_ERR_TOO_LARGE when the
 * payload passed NB_IPC_MAX_FRAME (at any put). The frame is then
 * w->buf.data / w->buf.len. */
enum nb_err nb_ipc_end(struct nb_ipc_writer *w);

/* A bounds-checked cursor over one payload (borrowed). */
struct nb_ipc_reader {
    const char *p;
    size_t len;
    size_t off;
};

void nb_ipc_reader_init(struct nb_ipc_reader *r, const void *payload, size_t len);
/* The next field as a view into the payload; out->ptr[out->len] is the NUL.
 * NB_ERR_INVALID when the field runs past the payload or lacks its NUL (the
 * cursor then stays where it was). */
enum nb_err nb_ipc_get(struct nb_ipc_reader *r, struct nb_str *out);
/* The next field as a C string (same checks; binary NULs inside are kept,
 * so use nb_ipc_get when the length matters). */
enum nb_err nb_ipc_get_cstr(struct nb_ipc_reader *r, const char **out);
/* The next field as an integer: NB_ERR_INVALID unless exactly 4 bytes. */
enum nb_err nb_ipc_get_u32(struct nb_ipc_reader *r, uint32_t *out);
/* The same for an 8-byte integer. */
enum nb_err nb_ipc_get_u64(struct nb_ipc_reader *r, uint64_t *out);
/* An element count followed by count elements of at least per_item fields
 * each: NB_ERR_INVALID when the rest of the payload cannot hold them, so a
 * forged count never makes the caller allocate much. */
enum nb_err nb_ipc_get_count(struct nb_ipc_reader *r, size_t per_item, size_t *out);
/* True when every byte of the payload has been read. */
bool nb_ipc_reader_done(const struct nb_ipc_reader *r);

/* Receive storage, reused across frames. */
struct nb_ipc_rbuf {
    char *data;
    size_t cap;
};

void nb_ipc_rbuf_init(struct nb_ipc_rbuf *b);
void nb_ipc_rbuf_cleanup(struct nb_ipc_rbuf *b);

/* Write all n bytes to fd (a socket: MSG_NOSIGNAL, so a dead peer is
 * NB_ERR_IO, never SIGPIPE; other fds: write). Retries EINTR and short
 * writes. NB_ERR_IO on failure (errno kept). */
enum nb_err nb_ipc_send(int fd, const void *p, size_t n);
/* Receive one frame into b and point payload at it (valid until the next
 * receive into b; payload->ptr[payload->len] is NUL). deadline_us is an
 * absolute nb_clock_mono_us() time, < 0 for none. Returns:
 *   NB_OK            a whole frame arrived;
 *   NB_ERR_STOPPED   the peer closed the socket before the first byte;
 *   NB_ERR_IO        a read failed, or the peer closed inside a frame;
 *   NB_ERR_TOO_LARGE the length word is above NB_IPC_MAX_FRAME;
 *   NB_ERR_INVALID   the peer sent more than one frame;
 *   NB_IPC_TIMEOUT   the deadline passed first.
 * After any failure the stream is out of step and must be abandoned. */
enum nb_err nb_ipc_recv_frame(int fd, struct nb_ipc_rbuf *b, int64_t deadline_us,
                              struct nb_str *payload);

/* The messages (all fields in this order; "pairs" are a u32 count followed
 * by name, value fields; "list" is a count followed by single fields;
 * "triples" likewise with three fields per element).
 *
 * hello, worker -> host once at start: u32 NB_IPC_VERSION, u32 pid.
 *
 * request, host -> worker: u32 NB_IPC_VERSION, script_file, entry_point,
 *   function name, invocation id, trigger ("httpTrigger", "queueTrigger",
 *   "timerTrigger", "manual"), method, url, path, params pairs, query pairs,
 *   headers pairs, body, trigger_data, metadata_json, inputs pairs, pairs
 *   (name, u32 enum nb_binding_type) of the output bindings the function
 *   may use (out, not http), the http output binding name ("" when none).
 *
 * reply, worker -> host: u32 status, u32 has_http, headers pairs, body,
 *   outputs triples (binding, value, u64 visibility_ms as an int64), list of
 *   log lines, u32 return code (an
 *   int; 0 is success), error text ("" when none; set, the invocation failed
 *   whatever the code). */
#define NB_IPC_VERSION 1u

#endif
