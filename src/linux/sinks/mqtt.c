/* SPDX-License-Identifier: MIT */
/*
 * The MQTT sink (see mqtt.h): one libmosquitto connection at a time, driven by the delivery
 * thread through the sink seam.
 *
 * A connection goes through phases: CONNECTING (mosquitto_connect() done, waiting for the
 * CONNACK), SUBSCRIBING (P/+/state and P/sync/<client_id>, waiting for both SUBACKs), SYNCING
 * (the token published, waiting for it to come back: the retained states have all arrived
 * then), READY (discovery and "online" published, D/status subscribed; records may go out).
 * Any failure destroys the mosquitto object: the next attempt starts from a new one, with a
 * clean session, so that nothing the broker did not acknowledge is ever resent by the library
 * (the delivery thread resends the batch, and the marks decide what the broker already has).
 *
 * Requests: encode() packs each record with its seq and device into the body as a fixed-size
 * entry; start() copies the entries; poll() connects when needed, publishes the entries not
 * covered by their meter's mark, and ends when every publish of the request is acknowledged
 * (libmosquitto's on_publish: the PUBACK for QoS 1, the write for QoS 0).
 *
 * All of it runs in the delivery thread, the libmosquitto callbacks too (mosquitto_loop()
 * calls them); the diagnostics box is the only thing shared with another thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <poll.h>
#include <sys/socket.h>

#include <mosquitto.h>

#include "clock.h"
#include "log.h"
#include "sinks/mqtt.h"

#define DEVICE_MAX 128            /* a meter name as the store gives it (deliver.c's cache) */
#define CONNACK_TIMEOUT_US (10 * PL_US_PER_S)
#define IDLE_RETRY_MIN_MS 1000    /* an idle sink reconnects after this, doubling ... */
#define IDLE_RETRY_MAX_MS 30000   /* ... up to this */
#define CLOSE_GRACE_US (1000 * 1000) /* "offline" at a stop gets this long to be acknowledged */
#define SLICE_MS 50

struct ent {
	int64_t seq;
	struct pl_interval_record rec;
	char device[DEVICE_MAX];
};

/* What the broker holds for one meter's state topic, as far as this process knows. */
struct mark {
	char topic[PL_MQTT_TOPIC_MAX];
	int have;        /* a mark of this store was seen (or published) on this connection */
	uint64_t seq;
	int64_t start_us; /* the marked record's interval start; INT64_MAX: not known */
	int have_reg;    /* the register of the newest state seen or published on this
	                  * connection */
	int64_t reg_uwh;
	int64_t reg_slack_uwh; /* a state read back is rounded to the meter's resolution: one
	                        * unit of its last digit; -1: not yet known */
};

enum phase { P_DOWN, P_CONNECTING, P_SUBSCRIBING, P_SYNCING, P_READY };

struct mq {
	struct pl_mqtt_config c; /* strings below are copies */
	char *name, *host, *ca_file, *username, *password, *client_id, *topic_prefix,
		*discovery_prefix, *store_id, *sw_version;
	struct pl_mqtt_sink_meter *meters;
	struct pl_mqtt_node node;
	char avail[PL_MQTT_TOPIC_MAX], sync[PL_MQTT_TOPIC_MAX], states[PL_MQTT_TOPIC_MAX],
		hastatus[PL_MQTT_TOPIC_MAX];

	struct mosquitto *m;
	enum phase phase;
	int64_t deadline_us; /* of the phase before READY */
	int conn_rc;         /* the CONNACK's code, -1 before it */
	int tcp_pending;     /* the TCP connect is under way (step() waits for it) */
	int subs_left;
	int sub_refused;
	int sync_back;
	char token[64];
	uint64_t tokens;
	int token_mid; /* its PUBACK is not one of the counted publishes */
	int rediscover;
	int ever_connected;

	/* the failure that ended the connection; "" while none */
	char err[PL_SINK_MSG_MAX + 1];
	enum pl_sink_transport err_x;
	int err_status;

	/* the request */
	struct ent *req;
	size_t nreq, next, cap;
	int active;
	uint64_t outstanding; /* publishes not yet acknowledged, on this connection */
	int64_t progress_us;
	uint64_t skipped;

	struct mark *marks;
	size_t nmarks;

	/* while idle */
	int64_t idle_retry_us;
	uint32_t idle_backoff_ms;
	int idle_failing;

	/* P/M/diag */
	uint64_t *diag_sent;   /* the box versions published, per meter */
	int64_t *diag_at_us;
	uint64_t backlog_sent;

	char payload[PL_MQTT_DISCOVERY_MAX];
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
	mosquitto_lib_init();
}

static void logs(struct mq *s, enum pl_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logs(struct mq *s, enum pl_log_level level, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pl_log(level, "sink %s: %s", s->name, text);
}

/* ---- the diagnostics box --------------------------------------------------------------- */

struct pl_mqtt_box *pl_mqtt_box_new(size_t n)
{
	struct pl_mqtt_box *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->m = calloc(n ? n : 1, sizeof(*b->m));
	if (b->m == NULL) {
		free(b);
		return NULL;
	}
	b->n = n;
	for (size_t i = 0; i < n; i++)
		b->m[i].amplitude = b->m[i].noise = -1;
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

void pl_mqtt_box_free(struct pl_mqtt_box *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b->m);
	free(b);
}

void pl_mqtt_box_put(struct pl_mqtt_box *b, size_t i, const struct pl_mqtt_diag *d)
{
	struct pl_mqtt_box_meter *m;

	if (b == NULL || i >= b->n)
		return;
	pthread_mutex_lock(&b->lock);
	m = &b->m[i];
	if (m->version == 0 || strcmp(m->detector, d->detector_state ? d->detector_state : "") ||
	    m->amplitude != d->amplitude || m->noise != d->noise ||
	    m->rejected_total != d->rejected_total) {
		snprintf(m->detector, sizeof(m->detector), "%s",
			 d->detector_state ? d->detector_state : "");
		m->amplitude = d->amplitude;
		m->noise = d->noise;
		m->rejected_total = d->rejected_total;
		m->version++;
	}
	m->updated_us = d->updated_us;
	pthread_mutex_unlock(&b->lock);
}

void pl_mqtt_box_backlog(struct pl_mqtt_box *b, uint64_t backlog)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->lock);
	if (backlog != b->backlog || b->backlog_version == 0) {
		b->backlog = backlog;
		b->backlog_version++;
	}
	pthread_mutex_unlock(&b->lock);
}

/* ---- small helpers --------------------------------------------------------------------- */

static const struct pl_mqtt_sink_meter *meter_of(const struct mq *s, const char *device)
{
	for (size_t i = 0; i < s->c.nmeters; i++)
		if (strcmp(s->meters[i].name, device) == 0)
			return &s->meters[i];
	return NULL;
}

/* The meter as the payload builder takes it; an unconfigured one (still in the store) gets
 * 1000 imp/kWh for its decimals. */
static struct pl_mqtt_meter pl_meter_of(const struct mq *s, const char *device)
{
	const struct pl_mqtt_sink_meter *m = meter_of(s, device);

	return (struct pl_mqtt_meter){ .name = device, .imp_per_kwh = m ? m->imp_per_kwh : 1000 };
}

static struct mark *find_mark(struct mq *s, const char *topic, int create)
{
	struct mark *v;

	for (size_t i = 0; i < s->nmarks; i++)
		if (strcmp(s->marks[i].topic, topic) == 0)
			return &s->marks[i];
	if (!create || s->nmarks >= 4096) /* a broker full of other loggers' meters */
		return NULL;
	v = realloc(s->marks, (s->nmarks + 1) * sizeof(*v));
	if (v == NULL)
		return NULL;
	s->marks = v;
	v = &s->marks[s->nmarks++];
	memset(v, 0, sizeof(*v));
	snprintf(v->topic, sizeof(v->topic), "%s", topic);
	return v;
}

/*
 * "energy_kwh":123.456 of a state payload, in µWh. 0, or -1 when absent or malformed. Exact:
 * decimal digits, no floating point.
 */
static int parse_energy(const char *p, size_t len, int64_t *uwh)
{
	static const char key[] = "\"energy_kwh\":";
	const char *end = p + len, *q = NULL;
	int64_t whole = 0, frac = 0, scale = 1000000000;
	int neg = 0, digits = 0;

	for (const char *t = p; t + sizeof(key) - 1 <= end; t++)
		if (memcmp(t, key, sizeof(key) - 1) == 0) {
			q = t + sizeof(key) - 1;
			break;
		}
	if (q == NULL)
		return -1;
	if (q < end && *q == '-') {
		neg = 1;
		q++;
	}
	for (; q < end && *q >= '0' && *q <= '9'; q++, digits++) {
		if (whole > INT64_MAX / 10000000000)
			return -1;
		whole = whole * 10 + (*q - '0');
	}
	if (digits == 0)
		return -1;
	if (q < end && *q == '.') {
		for (q++; q < end && *q >= '0' && *q <= '9'; q++) {
			if (scale > 1) {
				scale /= 10;
				frac += (*q - '0') * scale;
			}
		}
	}
	*uwh = (neg ? -1 : 1) * (whole * 1000000000 + frac);
	return 0;
}

/*
 * "start":"2026-12-07T14:00:20Z" of a state payload (fractions of a second allowed), in µs.
 * 0, or -1 when absent or malformed.
 */
static int parse_start(const char *p, size_t len, int64_t *us)
{
	static const char key[] = "\"start\":\"";
	char buf[40];
	const char *q = NULL;
	struct tm tm;
	char *end;
	int64_t frac = 0, scale = PL_US_PER_S;
	size_t n = 0;

	for (const char *t = p; t + sizeof(key) - 1 <= p + len; t++)
		if (memcmp(t, key, sizeof(key) - 1) == 0) {
			q = t + sizeof(key) - 1;
			break;
		}
	if (q == NULL)
		return -1;
	while (q + n < p + len && q[n] != '"' && n < sizeof(buf) - 1)
		n++;
	memcpy(buf, q, n);
	buf[n] = '\0';
	memset(&tm, 0, sizeof(tm));
	end = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return -1;
	if (*end == '.')
		for (end++; *end >= '0' && *end <= '9'; end++)
			if (scale > 1) {
				scale /= 10;
				frac += (*end - '0') * scale;
			}
	if (strcmp(end, "Z") != 0)
		return -1;
	*us = (int64_t)timegm(&tm) * PL_US_PER_S + frac;
	return 0;
}

/* ---- the connection -------------------------------------------------------------------- */

/* Records the first failure of this connection; the caller drops it. */
static void set_err(struct mq *s, enum pl_sink_transport x, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void set_err(struct mq *s, enum pl_sink_transport x, int status, const char *fmt, ...)
{
	va_list ap;

	if (s->err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	if (s->err[0] == '\0')
		snprintf(s->err, sizeof(s->err), "failed");
	s->err_x = x;
	s->err_status = status;
}

/* Forgets the connection without a DISCONNECT: the broker publishes the Last Will. */
static void drop(struct mq *s)
{
	if (s->m != NULL)
		mosquitto_destroy(s->m);
	s->m = NULL;
	s->phase = P_DOWN;
	s->outstanding = 0;
}

/* A libmosquitto error code as a failure. */
static void lib_err(struct mq *s, int rc, const char *what)
{
	enum pl_sink_transport x = PL_XPORT_OTHER;
	const char *text = mosquitto_strerror(rc);
	int e = errno;

	if (rc == MOSQ_ERR_ERRNO) {
		text = strerror(e);
		if (e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH)
			x = PL_XPORT_REFUSED;
		else if (e == ETIMEDOUT)
			x = PL_XPORT_TIMEOUT;
	} else if (rc == MOSQ_ERR_EAI) {
		x = PL_XPORT_DNS;
	} else if (rc == MOSQ_ERR_TLS || rc == MOSQ_ERR_TLS_HANDSHAKE) {
		x = PL_XPORT_TLS;
	}
	set_err(s, x, 0, "%s mqtt%s://%s:%u: %s", what, s->c.tls ? "s" : "", s->host,
		(unsigned)s->c.port, text);
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
	(void)m;
	((struct mq *)obj)->conn_rc = rc;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
	struct mq *s = obj;

	(void)m;
	(void)mid;
	for (int i = 0; i < n; i++)
		if (granted[i] > 2)
			s->sub_refused = 1;
	if (s->subs_left > 0)
		s->subs_left--;
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
	struct mq *s = obj;

	(void)m;
	if (mid == s->token_mid)
		return;
	if (s->outstanding > 0)
		s->outstanding--;
	s->progress_us = pl_clock_mono_us();
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	struct mq *s = obj;
	struct pl_mqtt_mark mk;
	struct mark *k;
	size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;

	(void)m;
	if (strcmp(msg->topic, s->sync) == 0) {
		if (len == strlen(s->token) && memcmp(msg->payload, s->token, len) == 0)
			s->sync_back = 1;
		return;
	}
	if (s->hastatus[0] && strcmp(msg->topic, s->hastatus) == 0) {
		if (len == 6 && memcmp(msg->payload, "online", 6) == 0)
			s->rediscover = 1;
		return;
	}
	if (len == 0)
		return; /* a retained state deleted */
	k = find_mark(s, msg->topic, 1);
	if (k == NULL)
		return;
	if (pl_mqtt_parse_mark(msg->payload, len, &mk) == 0 && strcmp(mk.store, s->store_id) == 0 &&
	    (!k->have || mk.seq > k->seq)) {
		k->have = 1;
		k->seq = mk.seq;
		if (parse_start(msg->payload, len, &k->start_us) != 0)
			k->start_us = INT64_MAX;
	}
	if (!k->have_reg) {
		int64_t uwh;

		if (parse_energy(msg->payload, len, &uwh) == 0) {
			k->have_reg = 1;
			k->reg_uwh = uwh;
			k->reg_slack_uwh = -1; /* rounded: the meter's resolution, known later */
		}
	}
}

/* Publishes; counts it as outstanding. 0, or -1 with the failure set. */
static int publish(struct mq *s, const char *topic, const char *payload, size_t len, int retain)
{
	int rc = mosquitto_publish(s->m, NULL, topic, (int)len, payload, s->c.qos, retain != 0);

	if (rc != MOSQ_ERR_SUCCESS) {
		lib_err(s, rc, "publish to");
		return -1;
	}
	s->outstanding++;
	return 0;
}

static int publish_discovery(struct mq *s)
{
	char topic[PL_MQTT_TOPIC_MAX];

	if (s->discovery_prefix[0] == '\0')
		return 0;
	for (size_t i = 0; i < s->c.nmeters; i++) {
		struct pl_mqtt_meter pm = { .name = s->meters[i].name,
					    .imp_per_kwh = s->meters[i].imp_per_kwh };
		int n = pl_mqtt_discovery_json(s->payload, sizeof(s->payload), &s->node, &pm);

		if (n < 0 || pl_mqtt_discovery_topic(topic, sizeof(topic), &s->node, &pm) < 0) {
			logs(s, PL_LOG_WARNING, "meter %s: no discovery payload (%s)", pm.name,
			     pl_strerror(n < 0 ? n : -PL_EINVAL));
			continue;
		}
		if (publish(s, topic, s->payload, (size_t)n, 1) != 0)
			return -1;
	}
	return 0;
}

/* P/M/diag of the meters whose view changed, at most every PL_MQTT_DIAG_EVERY_S each. */
static int publish_diag(struct mq *s)
{
	struct pl_mqtt_box *b = s->c.box;
	int64_t now = pl_clock_mono_us();

	if (b == NULL)
		return 0;
	for (size_t i = 0; i < s->c.nmeters && i < b->n; i++) {
		struct pl_mqtt_box_meter bm;
		uint64_t backlog, bver;
		char topic[PL_MQTT_TOPIC_MAX];
		int n;

		if (s->diag_at_us[i] != 0 && now - s->diag_at_us[i] < PL_MQTT_DIAG_EVERY_S * PL_US_PER_S)
			continue;
		pthread_mutex_lock(&b->lock);
		bm = b->m[i];
		backlog = b->backlog;
		bver = b->backlog_version;
		pthread_mutex_unlock(&b->lock);
		if (bm.version == 0 || (bm.version == s->diag_sent[i] && bver == s->backlog_sent))
			continue;
		struct pl_mqtt_diag d = { .detector_state = bm.detector, .amplitude = bm.amplitude,
					  .noise = bm.noise, .rejected_total = bm.rejected_total,
					  .backlog = backlog, .updated_us = bm.updated_us };
		n = pl_mqtt_diag_json(s->payload, sizeof(s->payload), &d);
		if (n < 0 || pl_mqtt_topic(topic, sizeof(topic), &s->node, s->meters[i].name,
					   "diag") < 0)
			continue;
		if (publish(s, topic, s->payload, (size_t)n, 1) != 0)
			return -1;
		s->diag_sent[i] = bm.version;
		s->diag_at_us[i] = now;
		if (i + 1 == s->c.nmeters || i + 1 == b->n)
			s->backlog_sent = bver;
	}
	return 0;
}

/* Starts a new connection (the old one, if any, is dropped). 0, or -1 with the failure set. */
static int connect_start(struct mq *s)
{
	int rc;

	drop(s);
	pthread_once(&lib_once, lib_init);
	/* what the broker holds is read again: the marks, and the register to compare with
	 * (the one published last may belong to a batch that failed and is sent again, from
	 * older records: compared with it, they would look like a register set lower) */
	for (size_t i = 0; i < s->nmarks; i++)
		s->marks[i].have = s->marks[i].have_reg = 0;
	for (size_t i = 0; i < s->c.nmeters; i++)
		s->diag_sent[i] = 0, s->diag_at_us[i] = 0;
	s->conn_rc = -1;
	s->subs_left = 0;
	s->sub_refused = 0;
	s->sync_back = 0;
	s->token_mid = -1;
	s->rediscover = 0;
	s->m = mosquitto_new(s->client_id, true, s);
	if (s->m == NULL) {
		set_err(s, PL_XPORT_OTHER, 0, "cannot create a libmosquitto client: %s",
			strerror(errno));
		return -1;
	}
	mosquitto_int_option(s->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_connect_callback_set(s->m, on_connect);
	mosquitto_subscribe_callback_set(s->m, on_subscribe);
	mosquitto_publish_callback_set(s->m, on_publish);
	mosquitto_message_callback_set(s->m, on_message);
	if (s->username != NULL &&
	    (rc = mosquitto_username_pw_set(s->m, s->username, s->password)) != MOSQ_ERR_SUCCESS)
		goto bad;
	rc = mosquitto_will_set(s->m, s->avail, 7, "offline", 1, true);
	if (rc != MOSQ_ERR_SUCCESS)
		goto bad;
	if (s->c.tls) {
		/* verification always on: the chain against ca_file or the system's store, and the
		 * host name (tls_insecure false) */
		rc = mosquitto_tls_set(s->m, s->ca_file, s->ca_file ? NULL : "/etc/ssl/certs", NULL,
				       NULL, NULL);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_tls_insecure_set(s->m, false);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_tls_opts_set(s->m, 1, NULL, NULL);
		if (rc != MOSQ_ERR_SUCCESS)
			goto bad;
	}
	/* resolves the name (blocking), starts the TCP connect without waiting for it */
	rc = mosquitto_connect_async(s->m, s->host, s->c.port, s->c.keepalive_s);
	if (rc != MOSQ_ERR_SUCCESS) {
		lib_err(s, rc, "cannot connect to");
		drop(s);
		return -1;
	}
	s->tcp_pending = 1;
	s->phase = P_CONNECTING;
	s->deadline_us = pl_clock_mono_us() + CONNACK_TIMEOUT_US;
	return 0;
bad:
	lib_err(s, rc, "cannot set up the connection to");
	drop(s);
	return -1;
}

/* The CONNACK's refusal as the delivery policy's input: bad credentials and "not authorised"
 * as 401/403 (slow retries, loud), the rest as configuration errors or a busy broker. */
static void connack_err(struct mq *s, int rc)
{
	int status = rc == 4 ? 401 : rc == 5 ? 403 : rc == 3 ? 503 : 400;

	set_err(s, PL_XPORT_NONE, status, "%d (%s) from mqtt%s://%s:%u%s", rc,
		mosquitto_connack_string(rc), s->c.tls ? "s" : "", s->host, (unsigned)s->c.port,
		rc == 2 ? ": check client_id" : rc >= 4 ? ": check username and password_file" : "");
}

/*
 * Moves the connection on: one mosquitto_loop() of at most timeout_ms, then the next phase if
 * its condition is met. 0, or -1 with the failure set and the connection dropped.
 */
static int step(struct mq *s, int timeout_ms)
{
	int64_t now;
	int rc;

	if (s->m == NULL)
		return -1;
	if (s->tcp_pending) {
		/* the TCP connect of mosquitto_connect_async() still under way: libmosquitto's
		 * loop must not touch the socket before it is done (it takes a connect in
		 * progress for a broken connection) */
		struct pollfd pfd = { .fd = mosquitto_socket(s->m), .events = POLLOUT };
		int e = 0;
		socklen_t el = sizeof(e);

		if (pfd.fd < 0 || poll(&pfd, 1, timeout_ms) < 0) {
			lib_err(s, MOSQ_ERR_NO_CONN, "cannot connect to");
			goto fail;
		}
		if (pfd.revents == 0) {
			if (pl_clock_mono_us() > s->deadline_us) {
				set_err(s, PL_XPORT_TIMEOUT, 0, "cannot connect to mqtt%s://%s:%u: no "
					"answer within %d s", s->c.tls ? "s" : "", s->host,
					(unsigned)s->c.port, (int)(CONNACK_TIMEOUT_US / PL_US_PER_S));
				goto fail;
			}
			return 0;
		}
		if (getsockopt(pfd.fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) {
			errno = e ? e : errno;
			lib_err(s, MOSQ_ERR_ERRNO, "cannot connect to");
			goto fail;
		}
		s->tcp_pending = 0;
		timeout_ms = 0;
	}
	rc = mosquitto_loop(s->m, timeout_ms, 1);
	if (s->conn_rc > 0) {
		connack_err(s, s->conn_rc);
		goto fail;
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		lib_err(s, rc, "connection lost to");
		goto fail;
	}
	now = pl_clock_mono_us();
	switch (s->phase) {
	case P_CONNECTING:
		if (s->conn_rc != 0)
			break;
		s->subs_left = 2;
		rc = mosquitto_subscribe(s->m, NULL, s->states, 1);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_subscribe(s->m, NULL, s->sync, 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			lib_err(s, rc, "cannot subscribe at");
			goto fail;
		}
		s->phase = P_SUBSCRIBING;
		s->deadline_us = now + (int64_t)s->c.sync_timeout_ms * 1000;
		break;
	case P_SUBSCRIBING:
		if (s->sub_refused) {
			set_err(s, PL_XPORT_NONE, 403, "the broker refused the subscription to %s or "
				"%s (its ACL must allow this client to read its own topics)",
				s->states, s->sync);
			goto fail;
		}
		if (s->subs_left > 0)
			break;
		snprintf(s->token, sizeof(s->token), "%" PRIx64 "-%" PRIu64, pl_clock_wall_us(),
			 ++s->tokens);
		rc = mosquitto_publish(s->m, &s->token_mid, s->sync, (int)strlen(s->token),
				       s->token, 1, false);
		if (rc != MOSQ_ERR_SUCCESS) {
			lib_err(s, rc, "cannot publish the sync token at");
			goto fail;
		}
		s->phase = P_SYNCING;
		break;
	case P_SYNCING:
		if (!s->sync_back)
			break;
		/* every retained state has arrived: the marks are known */
		if (publish_discovery(s) != 0 ||
		    publish(s, s->avail, "online", 6, 1) != 0)
			goto fail;
		if (s->hastatus[0]) {
			rc = mosquitto_subscribe(s->m, NULL, s->hastatus, 1);
			if (rc != MOSQ_ERR_SUCCESS) {
				lib_err(s, rc, "cannot subscribe at");
				goto fail;
			}
		}
		s->phase = P_READY;
		if (!s->ever_connected || s->idle_failing)
			logs(s, PL_LOG_INFO, "connected to mqtt%s://%s:%u as %s", s->c.tls ? "s" : "",
			     s->host, (unsigned)s->c.port, s->client_id);
		s->ever_connected = 1;
		s->idle_failing = 0;
		s->idle_backoff_ms = 0;
		break;
	case P_READY:
		if (s->rediscover) {
			s->rediscover = 0;
			if (publish_discovery(s) != 0)
				goto fail;
		}
		if (publish_diag(s) != 0)
			goto fail;
		break;
	case P_DOWN:
		break;
	}
	if (s->phase != P_READY && s->phase != P_DOWN && now > s->deadline_us) {
		if (s->phase == P_CONNECTING)
			set_err(s, PL_XPORT_TIMEOUT, 0, "no CONNACK from mqtt%s://%s:%u within %d s",
				s->c.tls ? "s" : "", s->host, (unsigned)s->c.port,
				(int)(CONNACK_TIMEOUT_US / PL_US_PER_S));
		else
			set_err(s, PL_XPORT_TIMEOUT, 0, "the broker did not return the sync message "
				"on %s within %d ms (the retained states cannot be trusted to have "
				"arrived)", s->sync, s->c.sync_timeout_ms);
		goto fail;
	}
	return 0;
fail:
	drop(s);
	return -1;
}

/* ---- the request ----------------------------------------------------------------------- */

/* Publishes what is left of the request. 0, or -1 with the failure set. */
static int publish_request(struct mq *s)
{
	char ti[PL_MQTT_TOPIC_MAX], ts[PL_MQTT_TOPIC_MAX], state[PL_MQTT_PAYLOAD_MAX];
	struct pl_mqtt_mark mk;

	snprintf(mk.store, sizeof(mk.store), "%s", s->store_id);
	for (; s->next < s->nreq; s->next++) {
		const struct ent *e = &s->req[s->next];
		struct pl_mqtt_meter pm = pl_meter_of(s, e->device);
		struct mark *k;
		int ni, ns;

		if (pl_mqtt_topic(ti, sizeof(ti), &s->node, e->device, "interval") < 0 ||
		    pl_mqtt_topic(ts, sizeof(ts), &s->node, e->device, "state") < 0) {
			set_err(s, PL_XPORT_OTHER, 0, "meter %s: no topic for it", e->device);
			return -1;
		}
		k = find_mark(s, ts, 1);
		/* at or before the mark: the broker has it. The interval's start must not be later
		 * than the marked one's either: a store restored from a backup has the same id and
		 * gives its new records numbers the broker has seen (those are published) */
		if (k != NULL && k->have && (uint64_t)e->seq <= k->seq &&
		    e->rec.start_us <= k->start_us) {
			s->skipped++;
			continue;
		}
		mk.seq = (uint64_t)e->seq;
		ni = pl_mqtt_interval_json(s->payload, sizeof(s->payload), &pm, &e->rec, &mk);
		ns = pl_mqtt_state_json(state, sizeof(state), &pm, &e->rec, &mk);
		if (ni < 0 || ns < 0) {
			set_err(s, PL_XPORT_OTHER, 0, "meter %s: record %" PRId64 " has no payload (%s)",
				e->device, e->seq, pl_strerror(ni < 0 ? ni : ns));
			return -1;
		}
		if (k != NULL && k->reg_slack_uwh < 0) {
			int64_t one = 1000000000;

			for (unsigned d = pl_mqtt_kwh_decimals(pm.imp_per_kwh); d > 0; d--)
				one /= 10;
			k->reg_slack_uwh = one; /* the last digit of the value read back */
		}
		if (k != NULL && k->have_reg && e->rec.register_uwh + k->reg_slack_uwh < k->reg_uwh)
			logs(s, PL_LOG_WARNING, "meter %s: the register was set lower: %.6f kWh after "
			     "%.6f kWh; Home Assistant will see a meter reset", e->device,
			     (double)e->rec.register_uwh / 1e9, (double)k->reg_uwh / 1e9);
		/* the interval, then at once its state: the window between the two is the one
		 * left open (mqtt.h) */
		if (publish(s, ti, s->payload, (size_t)ni, 0) != 0 ||
		    publish(s, ts, state, (size_t)ns, 1) != 0)
			return -1;
		if (k != NULL) {
			k->have = 1;
			k->seq = (uint64_t)e->seq;
			k->start_us = e->rec.start_us;
			k->have_reg = 1;
			k->reg_uwh = e->rec.register_uwh;
			k->reg_slack_uwh = 0;
		}
	}
	return 0;
}

static void result_ok(struct mq *s, struct pl_sink_result *res)
{
	memset(res, 0, sizeof(*res));
	res->resp.transport = PL_XPORT_NONE;
	res->resp.status = 204;
	if (s->skipped > 0)
		logs(s, PL_LOG_INFO, "%" PRIu64 " record%s the broker already had (%s meter's "
		     "retained state marks %s): not published again", s->skipped,
		     s->skipped == 1 ? "" : "s", s->skipped == 1 ? "its" : "their",
		     s->skipped == 1 ? "it" : "them");
	s->skipped = 0;
	s->active = 0;
}

static void result_err(struct mq *s, struct pl_sink_result *res)
{
	memset(res, 0, sizeof(*res));
	res->resp.transport = s->err_x;
	res->resp.status = s->err_status;
	snprintf(res->message, sizeof(res->message), "%s", s->err);
	s->err[0] = '\0';
	s->skipped = 0;
	s->active = 0;
}

/* ---- the seam -------------------------------------------------------------------------- */

static char *dup_or_null(const char *v, int *bad)
{
	char *d;

	if (v == NULL)
		return NULL;
	d = strdup(v);
	if (d == NULL)
		*bad = 1;
	return d;
}

static void close_op(void *p);

static int open_op(const void *cfg, void **out)
{
	const struct pl_mqtt_config *c = cfg;
	struct mq *s = calloc(1, sizeof(*s));
	int bad = 0;

	*out = NULL;
	if (s == NULL)
		return -PL_ENOMEM;
	if (c->host == NULL || c->client_id == NULL || c->topic_prefix == NULL ||
	    c->store_id == NULL || (c->qos != 0 && c->qos != 1)) {
		free(s);
		return -PL_EINVAL;
	}
	s->c = *c;
	if (s->c.sync_timeout_ms <= 0)
		s->c.sync_timeout_ms = PL_MQTT_SYNC_TIMEOUT_MS;
	if (s->c.keepalive_s <= 0)
		s->c.keepalive_s = 30;
	s->name = dup_or_null(c->name ? c->name : "mqtt", &bad);
	s->host = dup_or_null(c->host, &bad);
	s->ca_file = dup_or_null(c->ca_file, &bad);
	s->username = dup_or_null(c->username, &bad);
	s->password = dup_or_null(c->password, &bad);
	s->client_id = dup_or_null(c->client_id, &bad);
	s->topic_prefix = dup_or_null(c->topic_prefix, &bad);
	s->discovery_prefix = dup_or_null(c->discovery_prefix ? c->discovery_prefix : "", &bad);
	s->store_id = dup_or_null(c->store_id, &bad);
	s->sw_version = dup_or_null(c->sw_version ? c->sw_version : "", &bad);
	s->meters = calloc(c->nmeters ? c->nmeters : 1, sizeof(*s->meters));
	s->diag_sent = calloc(c->nmeters ? c->nmeters : 1, sizeof(*s->diag_sent));
	s->diag_at_us = calloc(c->nmeters ? c->nmeters : 1, sizeof(*s->diag_at_us));
	s->cap = PL_MQTT_BATCH;
	s->req = calloc(s->cap, sizeof(*s->req));
	if (!s->meters || !s->diag_sent || !s->diag_at_us || !s->req)
		bad = 1;
	for (size_t i = 0; !bad && i < c->nmeters; i++) {
		s->meters[i].name = dup_or_null(c->meters[i].name, &bad);
		s->meters[i].imp_per_kwh = c->meters[i].imp_per_kwh;
	}
	if (bad) {
		close_op(s);
		return -PL_ENOMEM;
	}
	s->node = (struct pl_mqtt_node){ .topic_prefix = s->topic_prefix,
					 .discovery_prefix = s->discovery_prefix,
					 .node_id = s->client_id, .sw_version = s->sw_version,
					 .model = "Linux daemon",
					 .support_url = "https://github.com/powerlogger/powerlogger" };
	if (pl_mqtt_topic(s->avail, sizeof(s->avail), &s->node, NULL, "availability") < 0 ||
	    snprintf(s->sync, sizeof(s->sync), "%s/sync/%s", s->topic_prefix, s->client_id) >=
		    (int)sizeof(s->sync) ||
	    snprintf(s->states, sizeof(s->states), "%s/+/state", s->topic_prefix) >=
		    (int)sizeof(s->states) ||
	    (s->discovery_prefix[0] &&
	     snprintf(s->hastatus, sizeof(s->hastatus), "%s/status", s->discovery_prefix) >=
		     (int)sizeof(s->hastatus))) {
		close_op(s);
		return -PL_EINVAL;
	}
	*out = s;
	return 0;
}

static void close_op(void *p)
{
	struct mq *s = p;

	if (s == NULL)
		return;
	if (s->m != NULL && s->phase == P_READY) {
		/* a clean stop: "offline" by hand (a DISCONNECT suppresses the Last Will) */
		int64_t until = pl_clock_mono_us() + CLOSE_GRACE_US;

		s->outstanding = 0;
		if (publish(s, s->avail, "offline", 7, 1) == 0) {
			while (s->outstanding > 0 && pl_clock_mono_us() < until)
				if (mosquitto_loop(s->m, SLICE_MS, 1) != MOSQ_ERR_SUCCESS)
					break;
		}
		mosquitto_disconnect(s->m);
		mosquitto_loop(s->m, 0, 1);
	}
	drop(s);
	if (s->password != NULL)
		memset(s->password, 0, strlen(s->password));
	free(s->name);
	free(s->host);
	free(s->ca_file);
	free(s->username);
	free(s->password);
	free(s->client_id);
	free(s->topic_prefix);
	free(s->discovery_prefix);
	free(s->store_id);
	free(s->sw_version);
	for (size_t i = 0; s->meters && i < s->c.nmeters; i++)
		free((char *)s->meters[i].name);
	free(s->meters);
	free(s->diag_sent);
	free(s->diag_at_us);
	free(s->req);
	free(s->marks);
	free(s);
}

/* A fixed-size entry per record: the request is the records, not bytes for the wire. */
static int encode_op(void *p, char *buf, size_t cap, size_t *len, const char *device,
		     int64_t seq, const struct pl_interval_record *rec)
{
	struct mq *s = p;
	struct ent e;
	char topic[PL_MQTT_TOPIC_MAX];

	/* a name the topics cannot take can never be published: quarantined by the caller */
	if (strlen(device) >= sizeof(e.device) ||
	    pl_mqtt_topic(topic, sizeof(topic), &s->node, device, "interval") < 0)
		return -PL_EINVAL;
	if (*len + sizeof(e) > cap || *len / sizeof(e) >= s->cap)
		return -PL_ENOSPC;
	memset(&e, 0, sizeof(e));
	e.seq = seq;
	e.rec = *rec;
	snprintf(e.device, sizeof(e.device), "%s", device);
	memcpy(buf + *len, &e, sizeof(e));
	*len += sizeof(e);
	return 0;
}

static int start_op(void *p, const char *buf, size_t len)
{
	struct mq *s = p;

	if (s->active)
		return -PL_EBUSY;
	if (len % sizeof(struct ent) != 0 || len / sizeof(struct ent) > s->cap)
		return -PL_EINVAL;
	s->nreq = len / sizeof(struct ent);
	memcpy(s->req, buf, len);
	s->next = 0;
	s->skipped = 0;
	s->active = 1;
	s->progress_us = pl_clock_mono_us();
	return 0;
}

/* No PUBACK for this long with publishes outstanding: the broker is gone (keepalive would
 * find it too, later). */
static int64_t stall_us(const struct mq *s)
{
	int64_t k = (int64_t)s->c.keepalive_s * 2 * PL_US_PER_S;

	return k > 10 * PL_US_PER_S ? k : 10 * PL_US_PER_S;
}

static int poll_op(void *p, int timeout_ms, struct pl_sink_result *res)
{
	struct mq *s = p;
	int64_t end = pl_clock_mono_us() + (int64_t)timeout_ms * 1000;

	if (!s->active || res == NULL)
		return -PL_EINVAL;
	for (;;) {
		int64_t now, left;

		if (s->err[0] == '\0' && s->phase == P_DOWN)
			connect_start(s);
		if (s->err[0] == '\0' && s->phase == P_READY && publish_request(s) != 0)
			drop(s);
		if (s->err[0] != '\0') {
			drop(s);
			result_err(s, res);
			return 1;
		}
		if (s->phase == P_READY && s->next == s->nreq && s->outstanding == 0) {
			result_ok(s, res);
			return 1;
		}
		now = pl_clock_mono_us();
		if (s->phase == P_READY && s->outstanding > 0 && now - s->progress_us > stall_us(s)) {
			set_err(s, PL_XPORT_TIMEOUT, 0, "no PUBACK from the broker for %" PRId64
				" s (%" PRIu64 " messages unacknowledged)",
				(now - s->progress_us) / PL_US_PER_S, s->outstanding);
			continue;
		}
		left = (end - now) / 1000;
		if (left <= 0 && timeout_ms > 0)
			return 0;
		step(s, left < SLICE_MS ? (int)(left > 0 ? left : 0) : SLICE_MS);
		if (timeout_ms == 0 && s->err[0] == '\0' &&
		    !(s->phase == P_READY && s->next == s->nreq && s->outstanding == 0))
			return 0;
	}
}

static int sending_op(void *p)
{
	(void)p;
	return 0; /* poll writes as it goes; the next batch is read meanwhile */
}

static void abort_op(void *p)
{
	struct mq *s = p;

	/* nothing of it is acknowledged; what the broker got of it, the marks will say */
	s->active = 0;
	s->err[0] = '\0';
	drop(s);
}

static void idle_op(void *p, int timeout_ms)
{
	struct mq *s = p;
	int64_t now = pl_clock_mono_us();

	if (s->phase == P_DOWN) {
		if (now < s->idle_retry_us || connect_start(s) != 0) {
			struct timespec ts = { .tv_sec = timeout_ms / 1000,
					       .tv_nsec = (long)(timeout_ms % 1000) * 1000000 };

			if (s->err[0] != '\0')
				goto failed;
			nanosleep(&ts, NULL);
			return;
		}
	}
	if (step(s, timeout_ms) == 0)
		return;
failed:
	if (!s->idle_failing)
		logs(s, PL_LOG_WARNING, "%s%s; connecting again in the background", s->err_x ==
		     PL_XPORT_NONE ? "the broker refused the connection: CONNACK " : "", s->err);
	s->idle_failing = 1;
	s->err[0] = '\0';
	s->idle_backoff_ms = s->idle_backoff_ms ? s->idle_backoff_ms * 2 : IDLE_RETRY_MIN_MS;
	if (s->idle_backoff_ms > IDLE_RETRY_MAX_MS)
		s->idle_backoff_ms = IDLE_RETRY_MAX_MS;
	s->idle_retry_us = pl_clock_mono_us() + (int64_t)s->idle_backoff_ms * 1000;
}

const struct pl_sink_ops pl_mqtt_sink_ops = {
	.kind = "MQTT",
	.status_name = "CONNACK",
	.open = open_op,
	.close = close_op,
	.encode = encode_op,
	.start = start_op,
	.poll = poll_op,
	.sending = sending_op,
	.abort = abort_op,
	.idle = idle_op,
};
