/* Formatting and parsing of wire timestamps (see timefmt.h). */
#include "core/timefmt.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

static void split(nb_time_ms t, struct tm *tm, int *ms)
{
    int64_t secs = t / 1000;
    int64_t rem = t % 1000;
    if (rem < 0) {
        rem += 1000;
        secs -= 1;
    }
    time_t tt = (time_t)secs;
    gmtime_r(&tt, tm);
    *ms = (int)rem;
}

static void copy_out(char *out, size_t size, const char *tmp)
{
    size_t n = strnlen(tmp, size - 1);
    memcpy(out, tmp, n);
    out[n] = '\0';
}

void nb_time_rfc1123(nb_time_ms t, char out[NB_RFC1123_LEN])
{
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char mons[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    int ms;
    split(t, &tm, &ms);
    char tmp[96];
    snprintf(tmp, sizeof(tmp), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday, mons[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
    copy_out(out, NB_RFC1123_LEN, tmp);
}

void nb_time_iso8601(nb_time_ms t, char out[NB_ISO8601_LEN])
{
    struct tm tm;
    int ms;
    split(t, &tm, &ms);
    char tmp[96]; /* wide enough for any int, so the compiler sees no truncation */
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03d0000Z",
             (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, ms % 1000);
    copy_out(out, NB_ISO8601_LEN, tmp);
}

static int digits(const char *s, size_t n, size_t at, size_t count, int *out)
{
    if (at + count > n) return -1;
    int v = 0;
    for (size_t i = 0; i < count; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

enum nb_err nb_time_parse_iso8601(const char *s, size_t n, nb_time_ms *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    size_t i = 0;
    if (digits(s, n, 0, 4, &y) || n < 10 || s[4] != '-' || digits(s, n, 5, 2, &mo) ||
        s[7] != '-' || digits(s, n, 8, 2, &d))
        return NB_ERR_INVALID;
    i = 10;
    if (i < n && s[i] == 'T') {
        if (digits(s, n, 11, 2, &h) || n < 16 || s[13] != ':' || digits(s, n, 14, 2, &mi))
            return NB_ERR_INVALID;
        i = 16;
        if (i < n && s[i] == ':') {
            if (digits(s, n, 17, 2, &sec)) return NB_ERR_INVALID;
            i = 19;
            if (i < n && s[i] == '.') {
                i++;
                size_t start = i;
                int scale = 100;
                while (i < n && s[i] >= '0' && s[i] <= '9') {
                    ms += (s[i] - '0') * scale;
                    scale /= 10;
                    i++;
                }
                if (i == start) return NB_ERR_INVALID;
            }
        }
    }
    if (i < n && s[i] == 'Z') i++;
    if (i != n) return NB_ERR_INVALID;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return NB_ERR_INVALID;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t tt = timegm(&tm);
    *out = (int64_t)tt * 1000 + ms;
    return NB_OK;
}
