/* SPDX-License-Identifier: MIT */
/*
 * Trace reader: CSV or raw 16-bit samples from a file, a pipe or standard input, in batches.
 *
 * One fixed buffer (64 KiB) per reader, so a file of any size is read in constant memory.
 * CSV lines are found in the buffer in place and parsed without copying; numbers are parsed
 * from their digits into scaled integers, so "1420675206.123456" is exactly 1420675206123456
 * microseconds, which a double cannot promise. A batch ends when the buffer holds no further
 * complete line, so a live pipe yields samples as they arrive instead of waiting for 64 KiB.
 *
 * Errors are sticky. An error found in the middle of a batch is held back until the samples
 * before it have been returned, so the caller sees every good sample, then the error.
 */
#include "sources/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_SIZE 65536
/* A line and its "\r\n" must fit in the buffer with room to spare, so refills make progress. */
_Static_assert(PL_TRACE_MAX_LINE + 2 < BUF_SIZE, "trace buffer too small for a line");

struct pl_trace {
	struct pl_trace_config cfg;
	FILE *f;       /* the caller's stream (pl_trace_open_file), or NULL */
	int fd;        /* read(2) from this when f is NULL */
	int close_fd;  /* close fd when freed */
	char *name;
	int err;       /* sticky: 0 or a negative PL_E* code */
	int eof;
	char msg[1024];
	/* input buffer: bytes [pos, end) are not consumed yet */
	size_t pos, end;
	uint64_t count;     /* samples returned */
	/* CSV */
	uint64_t line;      /* lines taken from the buffer so far */
	int seen_content;   /* a line other than blank or comment was seen: no header after it */
	int have_last;
	int64_t last_t;
	/* raw */
	uint64_t index;     /* index of the next sample */
	uint64_t align;     /* blocks for pl_trace_read_u16 start at multiples of this */
	unsigned char buf[BUF_SIZE];
};

static int fail(struct pl_trace *t, int err, int with_line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Records the error (the first one wins) with a "NAME:LINE: " or "NAME: " prefix. */
static int fail(struct pl_trace *t, int err, int with_line, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (t->err)
		return t->err;
	t->err = err;
	if (with_line)
		k = snprintf(t->msg, sizeof(t->msg), "%s:%" PRIu64 ": ", t->name, t->line);
	else
		k = snprintf(t->msg, sizeof(t->msg), "%s: ", t->name);
	if (k < 0 || (size_t)k >= sizeof(t->msg))
		k = 0;
	va_start(ap, fmt);
	vsnprintf(t->msg + k, sizeof(t->msg) - (size_t)k, fmt, ap);
	va_end(ap);
	return err;
}

static void set_err(char *err, size_t errcap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errcap, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errcap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errcap, fmt, ap);
	va_end(ap);
}

/* ---- numbers ---------------------------------------------------------------------------- */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int equals_nocase(const char *s, size_t len, const char *word)
{
	size_t i;

	for (i = 0; i < len; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (word[i] == '\0' || c != word[i])
			return 0;
	}
	return word[i] == '\0';
}

/* NaN or Inf, signed or not, as strtod would spell them. */
static int is_nan_inf(const char *s, size_t len)
{
	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		s++;
		len--;
	}
	return equals_nocase(s, len, "nan") || equals_nocase(s, len, "inf") ||
	       equals_nocase(s, len, "infinity");
}

static const uint64_t pow10_u64[19] = {
	1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u, 1000000000u,
	10000000000u, 100000000000u, 1000000000000u, 10000000000000u, 100000000000000u,
	1000000000000000u, 10000000000000000u, 100000000000000000u, 1000000000000000000u,
};

static int parse_decimal_general(const char *s, size_t len, unsigned scale, int64_t *out);

/*
 * The common case in one pass: an optional sign, at most 18 integer digits, an optional
 * fraction, no exponent. Returns 1 if it handled the text (*rc set), 0 to leave it to the
 * general parser, which agrees with it wherever both apply.
 */
static int parse_decimal_fast(const char *s, size_t len, unsigned scale, int64_t *out, int *rc)
{
	size_t i = 0, i0, ndig;
	uint64_t ip = 0, fp = 0, v, lim;
	unsigned nf = 0;
	int neg = 0, up = 0;

	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		i = 1;
	}
	i0 = i;
	while (i < len && is_digit(s[i]) && i - i0 < 18)
		ip = ip * 10 + (uint64_t)(s[i++] - '0');
	if (i < len && is_digit(s[i]))
		return 0; /* too many integer digits */
	ndig = i - i0;
	if (i < len && s[i] == '.') {
		size_t f0 = ++i;

		for (; i < len && is_digit(s[i]); i++) {
			if (nf < scale) {
				fp = fp * 10 + (uint64_t)(s[i] - '0');
				nf++;
			} else if (i - f0 == scale) {
				up = s[i] >= '5'; /* the first digit past the scale rounds */
			}
		}
		ndig += i - f0;
	}
	if (i != len || ndig == 0)
		return 0; /* an exponent, NaN, Inf or junk: the general parser decides */
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (__builtin_mul_overflow(ip, pow10_u64[scale], &v) ||
	    __builtin_add_overflow(v, fp * pow10_u64[scale - nf], &v) ||
	    __builtin_add_overflow(v, (uint64_t)up, &v) || v > lim) {
		*rc = -PL_ERANGE;
		return 1;
	}
	*out = neg ? (v == 0 ? 0 : -(int64_t)(v - 1) - 1) : (int64_t)v;
	*rc = 0;
	return 1;
}

int pl_trace_parse_decimal(const char *s, size_t len, unsigned scale, int64_t *out)
{
	int rc;

	if (len == 0)
		return -PL_EPARSE;
	if (scale > 18)
		return -PL_EINVAL;
	if (parse_decimal_fast(s, len, scale, out, &rc))
		return rc;
	return parse_decimal_general(s, len, scale, out);
}

/* Any decimal: digits of any length, an exponent. Two passes over the text. */
static int parse_decimal_general(const char *s, size_t len, unsigned scale, int64_t *out)
{
	size_t i = 0, int_start, nint, frac_start, nfrac, ndig;
	int neg = 0;
	long long exp = 0, p, j;
	uint64_t acc = 0, lim;

	if (is_nan_inf(s, len))
		return -PL_ERANGE;
	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		i = 1;
	}
	int_start = i;
	while (i < len && is_digit(s[i]))
		i++;
	nint = i - int_start;
	frac_start = i;
	if (i < len && s[i] == '.') {
		frac_start = ++i;
		while (i < len && is_digit(s[i]))
			i++;
	}
	nfrac = i - frac_start;
	ndig = nint + nfrac;
	if (ndig == 0)
		return -PL_EPARSE;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		int eneg = 0;
		size_t e0;

		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		e0 = i;
		for (; i < len && is_digit(s[i]); i++)
			if (exp < 1000000) /* far beyond any digit count a line can hold */
				exp = exp * 10 + (s[i] - '0');
		if (i == e0)
			return -PL_EPARSE;
		if (eneg)
			exp = -exp;
	}
	if (i != len)
		return -PL_EPARSE;

	/*
	 * The digits D (integer part, then fraction) stand for D * 10^(exp - nfrac). Scaled by
	 * 10^scale, the first p digits of D (padded with zeros) are the integer result, and digit
	 * p decides the rounding: 5..9 rounds away from zero, which is exactly half away from zero.
	 */
#define DIGIT(k) ((unsigned)((size_t)(k) < nint ? s[int_start + (size_t)(k)] \
						: s[frac_start + (size_t)(k) - nint]) - '0')
	p = (long long)nint + exp + (long long)scale;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (j = 0; j < p; j++) {
		unsigned d = 0;

		if (j < (long long)ndig)
			d = DIGIT(j);
		else if (acc == 0)
			break; /* only zeros remain */
		if (acc > (lim - d) / 10)
			return -PL_ERANGE;
		acc = acc * 10 + d;
	}
	if (p >= 0 && p < (long long)ndig && DIGIT(p) >= 5) {
		if (acc == lim)
			return -PL_ERANGE;
		acc++;
	}
#undef DIGIT
	if (neg)
		*out = acc == 0 ? 0 : -(int64_t)(acc - 1) - 1;
	else
		*out = (int64_t)acc;
	return 0;
}

int pl_trace_format_time(char *buf, size_t cap, int64_t t_us)
{
	uint64_t a = t_us < 0 ? (uint64_t)0 - (uint64_t)t_us : (uint64_t)t_us;
	int k = snprintf(buf, cap, "%s%" PRIu64 ".%06" PRIu64, t_us < 0 ? "-" : "",
			 a / 1000000u, a % 1000000u);

	if (k < 0 || (size_t)k >= cap)
		return -PL_ENOSPC;
	return k;
}

int64_t pl_trace_index_us(uint64_t i, uint32_t rate_hz)
{
	/* Split so that i * 1e6 cannot overflow: i = q * rate + r. */
	uint64_t q = i / rate_hz, r = i % rate_hz;

	return (int64_t)(q * 1000000u + r * 1000000u / rate_hz);
}

int pl_trace_format_parse(const char *name, enum pl_trace_format *fmt)
{
	if (strcmp(name, "csv") == 0)
		*fmt = PL_TRACE_CSV;
	else if (strcmp(name, "s16le") == 0)
		*fmt = PL_TRACE_S16LE;
	else if (strcmp(name, "u16le") == 0)
		*fmt = PL_TRACE_U16LE;
	else
		return -PL_EINVAL;
	return 0;
}

/* ---- opening and closing ---------------------------------------------------------------- */

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t r = a % b;
		a = b;
		b = r;
	}
	return a;
}

static int check_config(const struct pl_trace_config *cfg, const char *name, char *err,
			size_t errcap)
{
	if (cfg->format != PL_TRACE_CSV && cfg->format != PL_TRACE_S16LE &&
	    cfg->format != PL_TRACE_U16LE) {
		set_err(err, errcap, "%s: unknown trace format", name);
		return -PL_EINVAL;
	}
	if (cfg->format != PL_TRACE_CSV &&
	    (cfg->rate_hz < 1 || cfg->rate_hz > PL_TRACE_MAX_RATE)) {
		set_err(err, errcap, "%s: sample rate %" PRIu32 " Hz out of range (1..%d)", name,
			cfg->rate_hz, PL_TRACE_MAX_RATE);
		return -PL_EINVAL;
	}
	return 0;
}

static int trace_new(struct pl_trace **out, const char *name, const struct pl_trace_config *cfg,
		     char *err, size_t errcap)
{
	struct pl_trace *t;
	int rc;

	*out = NULL;
	rc = check_config(cfg, name, err, errcap);
	if (rc)
		return rc;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto err_nomem;
	t->name = strdup(name);
	if (t->name == NULL)
		goto err_free;
	t->cfg = *cfg;
	t->fd = -1;
	if (cfg->format == PL_TRACE_CSV) {
		t->cfg.rate_hz = 0;
	} else {
		/* Index i is at a whole microsecond when i * 1e6 / rate is an integer. */
		uint64_t step = cfg->rate_hz / gcd_u64(cfg->rate_hz, 1000000u);
		t->align = step <= BUF_SIZE / 4 ? step : 1;
	}
	*out = t;
	return 0;

err_free:
	free(t);
err_nomem:
	set_err(err, errcap, "%s: out of memory", name);
	return -PL_ENOMEM;
}

int pl_trace_open(struct pl_trace **out, const char *path, const struct pl_trace_config *cfg,
		  char *err, size_t errcap)
{
	int is_stdin = strcmp(path, "-") == 0;
	const char *name = is_stdin ? "stdin" : path;
	struct pl_trace *t;
	struct stat st;
	int fd, rc;

	*out = NULL;
	rc = check_config(cfg, name, err, errcap);
	if (rc)
		return rc;
	if (is_stdin) {
		fd = STDIN_FILENO;
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			set_err(err, errcap, "%s: %s", name, strerror(e));
			return e == ENOENT ? -PL_ENOENT : -PL_EIO;
		}
	}
	if (fstat(fd, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			set_err(err, errcap, "%s: is a directory", name);
			rc = -PL_EIO;
			goto err_close;
		}
		if (S_ISREG(st.st_mode) && cfg->format != PL_TRACE_CSV && (st.st_size & 1)) {
			set_err(err, errcap,
				"%s: odd byte count (%lld bytes): raw 16-bit input needs an even "
				"number",
				name, (long long)st.st_size);
			rc = -PL_EPARSE;
			goto err_close;
		}
	}
	rc = trace_new(&t, name, cfg, err, errcap);
	if (rc)
		goto err_close;
	t->fd = fd;
	t->close_fd = !is_stdin;
	*out = t;
	return 0;

err_close:
	if (!is_stdin)
		close(fd);
	return rc;
}

int pl_trace_open_file(struct pl_trace **out, FILE *f, const char *name,
		       const struct pl_trace_config *cfg, char *err, size_t errcap)
{
	int rc = trace_new(out, name, cfg, err, errcap);

	if (rc == 0)
		(*out)->f = f;
	return rc;
}

int pl_trace_open_fd(struct pl_trace **out, int fd, const char *name,
		     const struct pl_trace_config *cfg, char *err, size_t errcap)
{
	int dupfd, rc;

	*out = NULL;
	dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dupfd < 0) {
		set_err(err, errcap, "%s: %s", name, strerror(errno));
		return -PL_EIO;
	}
	rc = trace_new(out, name, cfg, err, errcap);
	if (rc) {
		close(dupfd);
		return rc;
	}
	(*out)->fd = dupfd;
	(*out)->close_fd = 1;
	return 0;
}

void pl_trace_free(struct pl_trace *t)
{
	if (t == NULL)
		return;
	if (t->close_fd)
		close(t->fd);
	free(t->name);
	free(t);
}

const char *pl_trace_error(const struct pl_trace *t)
{
	return t->msg;
}

const char *pl_trace_name(const struct pl_trace *t)
{
	return t->name;
}

uint64_t pl_trace_count(const struct pl_trace *t)
{
	return t->count;
}

uint32_t pl_trace_rate(const struct pl_trace *t)
{
	return t->cfg.rate_hz;
}

/* ---- the buffer ------------------------------------------------------------------------- */

/* Moves the unread bytes to the front and reads more. Returns 1 (more bytes), 0 (end of
 * input) or a negative error. */
static int fill(struct pl_trace *t)
{
	size_t room;

	if (t->pos > 0) {
		memmove(t->buf, t->buf + t->pos, t->end - t->pos);
		t->end -= t->pos;
		t->pos = 0;
	}
	room = BUF_SIZE - t->end;
	if (room == 0)
		return 1;
	for (;;) {
		size_t got;

		if (t->f != NULL) {
			got = fread(t->buf + t->end, 1, room, t->f);
			if (got == 0 && ferror(t->f))
				return fail(t, -PL_EIO, 0, "read error");
		} else {
			ssize_t r = read(t->fd, t->buf + t->end, room);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return fail(t, -PL_EIO, 0, "read error: %s", strerror(errno));
			got = (size_t)r;
		}
		if (got == 0) {
			t->eof = 1;
			return 0;
		}
		t->end += got;
		return 1;
	}
}

/* ---- CSV -------------------------------------------------------------------------------- */

/*
 * Takes the next line from the buffer. Returns 1 with the line (without '\n'), 0 at the end
 * of the input, 2 if no complete line is buffered and block is 0, or a negative error.
 */
static int next_line(struct pl_trace *t, int block, const char **line, size_t *len)
{
	for (;;) {
		const char *p = (const char *)t->buf + t->pos;
		size_t avail = t->end - t->pos;
		const char *nl = memchr(p, '\n', avail);
		int rc;

		if (nl != NULL || (t->eof && avail > 0)) {
			*line = p;
			*len = nl != NULL ? (size_t)(nl - p) : avail;
			t->pos += nl != NULL ? *len + 1 : avail;
			t->line++;
			return 1;
		}
		if (t->eof)
			return 0;
		if (avail > PL_TRACE_MAX_LINE + 1) { /* +1: room for a '\r' */
			t->line++;
			return fail(t, -PL_EPARSE, 1, "line longer than %d bytes",
				    PL_TRACE_MAX_LINE);
		}
		if (!block)
			return 2;
		rc = fill(t);
		if (rc < 0)
			return rc;
	}
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_blank((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_blank((*s)[*len - 1]))
		(*len)--;
}

/* A field quoted for a message: at most 40 bytes, unprintable bytes as '?'. */
static const char *quote(char *dst, size_t cap, const char *s, size_t len)
{
	size_t i, n = len < 40 ? len : 40;

	if (n > cap - 4)
		n = cap - 4;
	for (i = 0; i < n; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (n < len) {
		memcpy(dst + n, "...", 4);
	} else {
		dst[n] = '\0';
	}
	return dst;
}

/* Parses one line. Returns 1 with a sample, 0 for a line without one, or a negative error. */
static int parse_line(struct pl_trace *t, const char *line, size_t len, struct pl_sample *out)
{
	const char *c1, *c2, *ts, *vs;
	size_t tl, vl;
	int64_t tu, v;
	char q[48];
	int rc;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > PL_TRACE_MAX_LINE)
		return fail(t, -PL_EPARSE, 1, "line longer than %d bytes", PL_TRACE_MAX_LINE);
	trim(&line, &len);
	if (len == 0 || line[0] == '#')
		return 0;

	c1 = memchr(line, ',', len);
	ts = line;
	tl = c1 != NULL ? (size_t)(c1 - line) : len;
	trim(&ts, &tl);
	if (!t->seen_content) {
		t->seen_content = 1;
		if (pl_trace_parse_decimal(ts, tl, 6, &tu) == -PL_EPARSE && !is_nan_inf(ts, tl))
			return 0; /* a header: its first field is not a number */
	}
	if (c1 == NULL)
		return fail(t, -PL_EPARSE, 1,
			    "missing value column (expected time_s,value)");
	vs = c1 + 1;
	vl = len - (size_t)(vs - line);
	c2 = memchr(vs, ',', vl);
	if (c2 != NULL) {
		size_t ncol = 2;
		for (; c2 != NULL; c2 = memchr(c2 + 1, ',', len - (size_t)(c2 + 1 - line)))
			ncol++;
		return fail(t, -PL_EPARSE, 1,
			    "extra columns: found %zu, expected 2 (time_s,value)", ncol);
	}
	trim(&vs, &vl);
	if (tl == 0)
		return fail(t, -PL_EPARSE, 1, "missing time (expected time_s,value)");
	if (vl == 0)
		return fail(t, -PL_EPARSE, 1, "missing value (expected time_s,value)");

	rc = pl_trace_parse_decimal(ts, tl, 6, &tu);
	if (rc == -PL_ERANGE && is_nan_inf(ts, tl))
		return fail(t, rc, 1, "time is NaN or infinite: '%s'", quote(q, sizeof(q), ts, tl));
	if (rc == 0 && (tu <= -PL_TRACE_TIME_LIMIT || tu >= PL_TRACE_TIME_LIMIT))
		rc = -PL_ERANGE;
	if (rc == -PL_ERANGE)
		return fail(t, -PL_ERANGE, 1, "time out of range (+-146,000 years): '%s'",
			    quote(q, sizeof(q), ts, tl));
	if (rc)
		return fail(t, -PL_EPARSE, 1, "time is not a number: '%s'",
			    quote(q, sizeof(q), ts, tl));

	rc = pl_trace_parse_decimal(vs, vl, 0, &v);
	if (rc == -PL_ERANGE && is_nan_inf(vs, vl))
		return fail(t, rc, 1, "value is NaN or infinite: '%s'",
			    quote(q, sizeof(q), vs, vl));
	if (rc == -PL_ERANGE || (rc == 0 && (v < INT32_MIN || v > INT32_MAX)))
		return fail(t, -PL_ERANGE, 1, "value out of int32 range: '%s'",
			    quote(q, sizeof(q), vs, vl));
	if (rc)
		return fail(t, -PL_EPARSE, 1, "value is not a number: '%s'",
			    quote(q, sizeof(q), vs, vl));

	if (t->have_last && tu < t->last_t) {
		char a[32], b[32];

		pl_trace_format_time(a, sizeof(a), tu);
		pl_trace_format_time(b, sizeof(b), t->last_t);
		return fail(t, -PL_EORDER, 1, "time goes backwards: %s after %s", a, b);
	}
	t->have_last = 1;
	t->last_t = tu;
	out->t_us = tu;
	out->v = (int32_t)v;
	return 1;
}

static int csv_read(struct pl_trace *t, struct pl_sample *s, size_t cap, size_t *n)
{
	size_t k = 0;
	int rc = 0;

	while (k < cap) {
		const char *line = NULL;
		size_t len = 0;

		rc = next_line(t, k == 0, &line, &len);
		if (rc == 2) {
			rc = 0;
			break;
		}
		if (rc <= 0)
			break;
		rc = parse_line(t, line, len, &s[k]);
		if (rc < 0)
			break;
		k += (size_t)rc;
		rc = 0;
	}
	if (rc == 0 && k == 0 && t->eof && t->count == 0)
		rc = fail(t, -PL_EPARSE, 0, "no samples (%" PRIu64 " lines, none with data)",
			  t->line);
	t->count += k;
	*n = k;
	/* Samples before an error go out first; the sticky error comes with the next call. */
	return k > 0 ? 0 : rc;
}

/* ---- raw -------------------------------------------------------------------------------- */

/*
 * Makes sure at least one whole sample is buffered. Returns 1 if there is, 0 at the end of
 * the input, or a negative error (odd byte count, no samples, read error).
 */
static int raw_have_sample(struct pl_trace *t)
{
	while (t->end - t->pos < 2) {
		int rc;

		if (t->eof) {
			if (t->end - t->pos == 1)
				return fail(t, -PL_EPARSE, 0,
					    "odd byte count (%" PRIu64 " bytes): raw 16-bit input "
					    "needs an even number",
					    t->index * 2 + 1);
			if (t->count == 0)
				return fail(t, -PL_EPARSE, 0, "no samples (empty input)");
			return 0;
		}
		rc = fill(t);
		if (rc < 0)
			return rc;
	}
	return 1;
}

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static int raw_read(struct pl_trace *t, struct pl_sample *s, size_t cap, size_t *n)
{
	size_t k = 0;

	*n = 0;
	while (k < cap) {
		size_t avail, m, i;
		const unsigned char *p;

		if (t->end - t->pos < 2) {
			int rc;

			if (k > 0)
				break; /* return what we have rather than wait */
			rc = raw_have_sample(t);
			if (rc <= 0)
				return rc;
		}
		avail = (t->end - t->pos) / 2;
		m = avail < cap - k ? avail : cap - k;
		p = t->buf + t->pos;
		for (i = 0; i < m; i++, p += 2) {
			uint16_t u = le16(p);

			s[k + i].t_us = pl_trace_index_us(t->index + i, t->cfg.rate_hz);
			s[k + i].v = t->cfg.format == PL_TRACE_S16LE ? (int32_t)(int16_t)u
								      : (int32_t)u;
		}
		t->pos += m * 2;
		t->index += m;
		k += m;
	}
	t->count += k;
	*n = k;
	return 0;
}

int pl_trace_read_u16(struct pl_trace *t, uint16_t *v, size_t cap, size_t *n, int64_t *t0_us)
{
	uint16_t flip = t->cfg.format == PL_TRACE_S16LE ? 0x8000u : 0;
	const unsigned char *p;
	size_t m, i;

	*n = 0;
	if (t->err)
		return t->err;
	if (t->cfg.format == PL_TRACE_CSV || cap == 0)
		return -PL_EINVAL;
	for (;;) {
		size_t avail, want;
		uint64_t end;
		int rc = raw_have_sample(t);

		if (rc <= 0)
			return rc;
		avail = (t->end - t->pos) / 2;
		want = avail < cap ? avail : cap;
		/* End the block on an aligned index, so that the next one starts exactly. */
		end = (t->index + want) / t->align * t->align;
		if (end > t->index) {
			m = (size_t)(end - t->index);
			break;
		}
		if (t->eof || want == cap || t->end - t->pos == BUF_SIZE) {
			m = want; /* the last block, or no aligned end within reach */
			break;
		}
		rc = fill(t);
		if (rc < 0)
			return rc;
	}
	p = t->buf + t->pos;
	for (i = 0; i < m; i++, p += 2)
		v[i] = le16(p) ^ flip; /* s16 + 32768 == the sign bit flipped */
	*t0_us = pl_trace_index_us(t->index, t->cfg.rate_hz);
	t->pos += m * 2;
	t->index += m;
	t->count += m;
	*n = m;
	return 0;
}

int pl_trace_read(struct pl_trace *t, struct pl_sample *s, size_t cap, size_t *n)
{
	*n = 0;
	if (t->err)
		return t->err;
	if (cap == 0)
		return -PL_EINVAL;
	if (t->cfg.format == PL_TRACE_CSV)
		return csv_read(t, s, cap, n);
	return raw_read(t, s, cap, n);
}
