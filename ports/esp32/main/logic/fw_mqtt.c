/* SPDX-License-Identifier: MIT */
/*
 * The firmware's MQTT state machine (see fw_mqtt.h).
 */
#include "fw_mqtt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fw_http.h"
#include "powerlogger/common.h"

#define DEFAULT_TIMEOUT_MS 20000
#define DEFAULT_DIAG_MS 60000

static void say(struct fw_mqtt *m, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->msg, sizeof(m->msg), fmt, ap);
	va_end(ap);
	if (m->ops->log != NULL)
		m->ops->log(m->ctx, level, m->msg);
}

static uint32_t next_rand(struct fw_mqtt *m)
{
	uint32_t x = m->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	m->rng = x;
	return x;
}

/* Topics are packed into m->topics; *used is the room taken so far. */
static char *pool_take(struct fw_mqtt *m, size_t *used, size_t *cap)
{
	*cap = sizeof(m->topics) - *used;
	return m->topics + *used;
}

static int pool_keep(const char **t, char *p, int rc, size_t *used, size_t cap)
{
	if (rc < 0)
		return rc;
	if ((size_t)rc >= cap)
		return -PL_ENOSPC;
	*t = p;
	*used += (size_t)rc + 1;
	return 0;
}

static int make_topics(struct fw_mqtt *m)
{
	const struct pl_mqtt_node *n = &m->cfg.node;
	const char *name = m->cfg.meter.name;
	static const char *const leaf[3] = {"state", "interval", "diag"};
	const char **dst[3] = {&m->t_state, &m->t_interval, &m->t_diag};
	char id[PL_MQTT_TOPIC_MAX];
	size_t used = 0, cap;
	char *p;
	int rc = 0, i;

	m->t_disc = m->t_hastatus = "";
	for (i = 0; i < 3 && rc >= 0; i++) {
		p = pool_take(m, &used, &cap);
		rc = pool_keep(dst[i], p, pl_mqtt_topic(p, cap, n, name, leaf[i]), &used, cap);
	}
	if (rc >= 0) {
		p = pool_take(m, &used, &cap);
		rc = pool_keep(&m->t_avail, p, pl_mqtt_topic(p, cap, n, NULL, "availability"),
			       &used, cap);
	}
	if (rc >= 0)
		rc = pl_mqtt_segment(id, sizeof(id), n->node_id);
	if (rc >= 0) {
		p = pool_take(m, &used, &cap);
		rc = pool_keep(&m->t_sync, p, snprintf(p, cap, "%s/sync/%s", n->topic_prefix, id),
			       &used, cap);
	}
	if (rc >= 0 && n->discovery_prefix != NULL && n->discovery_prefix[0] != '\0') {
		p = pool_take(m, &used, &cap);
		rc = pool_keep(&m->t_disc, p, pl_mqtt_discovery_topic(p, cap, n, &m->cfg.meter),
			       &used, cap);
		if (rc >= 0) {
			p = pool_take(m, &used, &cap);
			rc = pool_keep(&m->t_hastatus, p,
				       snprintf(p, cap, "%s/status", n->discovery_prefix), &used,
				       cap);
		}
	}
	return rc;
}

/* Builds the discovery payload in a buffer of its own, just long enough (m->disc_len, or the
 * maximum while measuring), and queues it. The id, -1 (the client refuses), or -PL_ENOMEM. */
static int publish_discovery(struct fw_mqtt *m, int measure)
{
	size_t cap = measure ? PL_MQTT_DISCOVERY_MAX : m->disc_len + 1;
	char *buf = m->ops->alloc(m->ctx, cap);
	int len, id = -1;

	if (buf == NULL) {
		m->alloc_failures++;
		return -PL_ENOMEM;
	}
	len = pl_mqtt_discovery_json(buf, cap, &m->cfg.node, &m->cfg.meter);
	if (measure) {
		id = len;
		if (len >= 0)
			m->disc_len = (size_t)len;
	} else if (len >= 0) {
		id = m->ops->publish(m->ctx, m->t_disc, buf, (size_t)len, 1, 1);
	}
	m->ops->release(m->ctx, buf);
	return id;
}

int fw_mqtt_init(struct fw_mqtt *m, const struct fw_mqtt_config *cfg,
		 const struct fw_mqtt_ops *ops, void *ctx, struct fw_sink *sink,
		 struct fw_time *time)
{
	const struct pl_mqtt_node *n;
	int rc;

	if (m == NULL || cfg == NULL || ops == NULL || ops->start == NULL || ops->stop == NULL ||
	    ops->publish == NULL || ops->subscribe == NULL || ops->alloc == NULL ||
	    ops->release == NULL || sink == NULL || time == NULL ||
	    cfg->window > FW_MQTT_WINDOW || cfg->node.topic_prefix == NULL ||
	    cfg->node.node_id == NULL || cfg->meter.name == NULL || cfg->scratch == NULL)
		return -PL_EINVAL;
	memset(m, 0, sizeof(*m));
	m->cfg = *cfg;
	m->ops = ops;
	m->ctx = ctx;
	m->sink = sink;
	m->time = time;
	if (m->cfg.window == 0)
		m->cfg.window = FW_MQTT_WINDOW;
	if (m->cfg.connect_timeout_ms <= 0)
		m->cfg.connect_timeout_ms = DEFAULT_TIMEOUT_MS;
	if (m->cfg.sync_timeout_ms <= 0)
		m->cfg.sync_timeout_ms = DEFAULT_TIMEOUT_MS;
	if (m->cfg.diag_min_ms <= 0)
		m->cfg.diag_min_ms = FW_MQTT_DIAG_MIN_MS;
	m->rng = cfg->seed ? cfg->seed : UINT32_C(0x9e3779b9);
	m->diag.amplitude = -1;
	m->diag.noise = -1;
	m->t_state = m->t_interval = m->t_diag = m->t_avail = m->t_sync = "";
	m->t_disc = m->t_hastatus = "";
	n = &m->cfg.node;
	if (cfg->scratch_cap < PL_MQTT_PAYLOAD_MAX) {
		say(m, 2, "mqtt: the payload buffer has %lu bytes, fewer than %u",
		    (unsigned long)cfg->scratch_cap, (unsigned)PL_MQTT_PAYLOAD_MAX);
		return -PL_EINVAL;
	}
	if (n->topic_prefix[0] == '\0') {
		say(m, 2, "mqtt: the topic prefix must not be empty");
		return -PL_EINVAL;
	}
	if (pl_mqtt_name_problem(n->node_id) != NULL) {
		say(m, 2, "mqtt: client id \"%s\": %s", n->node_id,
		    pl_mqtt_name_problem(n->node_id));
		return -PL_EINVAL;
	}
	if (pl_mqtt_name_problem(m->cfg.meter.name) != NULL) {
		say(m, 2, "mqtt: meter (device) name \"%s\": %s", m->cfg.meter.name,
		    pl_mqtt_name_problem(m->cfg.meter.name));
		return -PL_EINVAL;
	}
	rc = make_topics(m);
	if (rc == -PL_ENOSPC) {
		say(m, 2, "mqtt: the topics of these prefixes, client id and meter name are too "
			  "long: together more than the %u bytes the firmware keeps for them "
			  "(shorten the prefixes)", (unsigned)FW_MQTT_TOPICS_MAX);
		return -PL_EINVAL;
	}
	/* the payload is built at every connection; it must fit now */
	if (rc >= 0 && m->t_disc[0] != '\0') {
		rc = publish_discovery(m, 1);
		if (rc == -PL_ENOMEM) {
			say(m, 2, "mqtt: no memory (%u bytes) to check the discovery payload",
			    (unsigned)PL_MQTT_DISCOVERY_MAX);
			return -PL_ENOMEM;
		}
	}
	if (rc < 0) {
		say(m, 2, "mqtt: the prefixes, client id or meter name make a topic or payload "
			  "too long or invalid (%s)", pl_strerror(rc));
		return -PL_EINVAL;
	}
	return 0;
}

enum fw_mqtt_topic fw_mqtt_topic_kind(const struct fw_mqtt *m, const char *topic, size_t len)
{
	enum fw_mqtt_topic k;

	for (k = FW_MQTT_T_STATE; k <= FW_MQTT_T_INTERVAL; k++) {
		const char *t = fw_mqtt_topic_of(m, k);

		if (t[0] != '\0' && strlen(t) == len && memcmp(t, topic, len) == 0)
			return k;
	}
	return FW_MQTT_T_OTHER;
}

const char *fw_mqtt_topic_of(const struct fw_mqtt *m, enum fw_mqtt_topic kind)
{
	switch (kind) {
	case FW_MQTT_T_STATE:
		return m->t_state;
	case FW_MQTT_T_SYNC:
		return m->t_sync;
	case FW_MQTT_T_HASTATUS:
		return m->t_hastatus;
	case FW_MQTT_T_INTERVAL:
		return m->t_interval;
	case FW_MQTT_T_OTHER:
		break;
	}
	return "";
}

int fw_mqtt_echo_mark(const char *data, size_t len, char *out, size_t cap)
{
	struct pl_mqtt_mark mk;
	int n;

	if (data == NULL || out == NULL || pl_mqtt_parse_mark(data, len, &mk) != 0)
		return -PL_EPARSE;
	n = snprintf(out, cap, "{\"store\":\"%s\",\"seq\":%llu}", mk.store,
		     (unsigned long long)mk.seq);
	return n < 0 || (size_t)n >= cap ? -PL_ENOSPC : n;
}

size_t fw_mqtt_max_payload(const struct fw_mqtt *m)
{
	return m->disc_len > PL_MQTT_PAYLOAD_MAX ? m->disc_len : PL_MQTT_PAYLOAD_MAX;
}

void fw_mqtt_set_view(struct fw_mqtt *m, const struct pl_mqtt_diag *view)
{
	m->diag.detector_state = view != NULL ? view->detector_state : NULL;
	m->diag.amplitude = view != NULL ? view->amplitude : -1;
	m->diag.noise = view != NULL ? view->noise : -1;
	m->diag.rejected_total = view != NULL ? view->rejected_total : 0;
}

static int discovery_on(const struct fw_mqtt *m)
{
	return m->t_disc[0] != '\0';
}

/* Stops the client and waits out a backoff before the next connection. */
static void fail(struct fw_mqtt *m, int64_t now_ms, const char *why)
{
	uint32_t ms;

	if (m->state != FW_MQTT_IDLE)
		m->ops->stop(m->ctx);
	ms = pl_backoff_next(&m->backoff, next_rand(m), 0);
	m->failures++;
	say(m, 1, "mqtt: %s in state %s; %lu record(s) waiting, next connection in %.1f s", why,
	    fw_mqtt_state_name(m->state), (unsigned long)fw_sink_count(m->sink), ms / 1e3);
	m->state = FW_MQTT_IDLE;
	m->nflight = 0;
	m->ctl_id = 0;
	m->due_ms = now_ms + ms;
}

static int publish(struct fw_mqtt *m, const char *topic, const char *data, size_t len, int qos,
		   int retain)
{
	return m->ops->publish(m->ctx, topic, data, len, qos, retain);
}

/* Discovery could not get its buffer: online without it, tried again later. */
static void discovery_later(struct fw_mqtt *m, int64_t now_ms)
{
	if (!m->disc_nomem)
		say(m, 1, "mqtt: no memory for the discovery payload (%lu bytes); trying again "
			  "every %u s", (unsigned long)m->disc_len + 1,
		    (unsigned)(FW_MQTT_DISC_RETRY_MS / 1000));
	m->discovery_again = 1;
	m->disc_nomem = 1;
	m->disc_retry_ms = now_ms + FW_MQTT_DISC_RETRY_MS;
}

/* Publishes the control message of the state just entered; waits for its PUBACK. */
static void enter_control(struct fw_mqtt *m, enum fw_mqtt_state st, int64_t now_ms)
{
	int len, id;

	m->state = st;
	if (st == FW_MQTT_DISCOVERY) {
		id = publish_discovery(m, 0);
		if (id == -PL_ENOMEM) {
			discovery_later(m, now_ms);
			enter_control(m, FW_MQTT_AVAILABILITY, now_ms);
			return;
		}
		if (id >= 0) { /* whatever asked for it again is served */
			if (m->disc_nomem)
				say(m, 0, "mqtt: discovery published (memory found)");
			m->discovery_again = 0;
			m->disc_nomem = 0;
		}
	} else {
		len = snprintf(m->cfg.scratch, m->cfg.scratch_cap, "online");
		id = publish(m, m->t_avail, m->cfg.scratch, (size_t)len, 1, 1);
	}
	if (id < 0) {
		fail(m, now_ms, "the client refuses to queue a message");
		return;
	}
	m->ctl_id = id;
	m->due_ms = now_ms + m->cfg.sync_timeout_ms;
}

/*
 * The token is back: the broker has every record up to the newer of its state's mark and the
 * newest echo of our own interval messages (the intervals went out in order on one connection
 * each, and the cursor passed only records with both PUBACKs).
 */
static void sync_done(struct fw_mqtt *m, int64_t now_ms)
{
	uint64_t have = m->broker_mark ? m->broker_seq : 0;
	int by_echo = 0;

	if (m->echo_mark && m->echo_seq > have && m->echo_seq > m->sink->cursor) {
		have = m->echo_seq;
		by_echo = 1;
	}
	if (have > m->sink->cursor) {
		size_t before = fw_sink_count(m->sink);
		uint32_t to = have > UINT32_MAX ? UINT32_MAX : (uint32_t)have;
		int rc = fw_sink_done_upto(m->sink, to);
		size_t skipped;

		if (rc < 0) {
			fail(m, now_ms, "the outbox failed");
			return;
		}
		skipped = before - fw_sink_count(m->sink);
		m->by_mark += skipped;
		m->by_echo += (uint32_t)by_echo;
		if (skipped > 0)
			say(m, 0, "mqtt: the broker already has %lu record(s) up to seq %lu (%s); "
				  "not published again", (unsigned long)skipped, (unsigned long)to,
			    by_echo ? "its interval echoed back" : "its retained state");
	}
	m->last_queued = m->sink->cursor;
	enter_control(m, discovery_on(m) ? FW_MQTT_DISCOVERY : FW_MQTT_AVAILABILITY, now_ms);
}

static int topic_is(const struct fw_mqtt_event *ev, const char *t)
{
	size_t n = strlen(t);

	return ev->topic != NULL && ev->topic_len == n && memcmp(ev->topic, t, n) == 0;
}

static int data_is(const struct fw_mqtt_event *ev, const char *s)
{
	size_t n = strlen(s);

	return ev->data != NULL && ev->data_len == n && memcmp(ev->data, s, n) == 0;
}

static void on_connected(struct fw_mqtt *m, int64_t now_ms)
{
	int rc, len;

	m->connects++;
	m->broker_mark = 0;
	m->broker_seq = 0;
	/* broker_mark is this connection's: the retained state comes again. echo_seq is kept:
	 * an echo handed over before a cut is not sent again */
	rc = m->ops->subscribe(m->ctx, m->t_state, 1);
	if (rc >= 0)
		rc = m->ops->subscribe(m->ctx, m->t_interval, 1);
	if (rc >= 0)
		rc = m->ops->subscribe(m->ctx, m->t_sync, 1);
	if (rc >= 0 && discovery_on(m))
		rc = m->ops->subscribe(m->ctx, m->t_hastatus, 0);
	if (rc < 0) {
		fail(m, now_ms, "cannot subscribe");
		return;
	}
	len = snprintf(m->token, sizeof(m->token), "sync-%lu-%08lx", (unsigned long)m->conn,
		       (unsigned long)next_rand(m));
	if (publish(m, m->t_sync, m->token, (size_t)len, 1, 0) < 0) {
		fail(m, now_ms, "cannot publish the sync token");
		return;
	}
	m->state = FW_MQTT_SYNC;
	m->due_ms = now_ms + m->cfg.sync_timeout_ms;
}

/* The records whose messages are all acknowledged, oldest first, leave the window. */
static int retire(struct fw_mqtt *m)
{
	uint32_t k = 0, upto = 0;

	while (k < m->nflight && m->flight[k].got_interval && m->flight[k].got_state)
		upto = m->flight[k++].seq;
	if (k == 0)
		return 0;
	memmove(&m->flight[0], &m->flight[k], (m->nflight - k) * sizeof(m->flight[0]));
	m->nflight -= k;
	return fw_sink_done_upto(m->sink, upto);
}

static void on_published(struct fw_mqtt *m, int id, int64_t now_ms)
{
	uint32_t i;

	if (id <= 0)
		return;
	if (id == m->ctl_id &&
	    (m->state == FW_MQTT_DISCOVERY || m->state == FW_MQTT_AVAILABILITY)) {
		m->ctl_id = 0;
		if (m->state == FW_MQTT_DISCOVERY) {
			enter_control(m, FW_MQTT_AVAILABILITY, now_ms);
		} else {
			m->state = FW_MQTT_BACKLOG;
			m->backoff = (struct pl_backoff)PL_BACKOFF_INIT;
			m->next_diag_ms = now_ms; /* at once */
			m->diag_sent_valid = 0;
			say(m, 0, "mqtt: online; %lu record(s) to publish",
			    (unsigned long)fw_sink_count(m->sink));
		}
		return;
	}
	for (i = 0; i < m->nflight; i++) {
		if (m->flight[i].id_interval == id)
			m->flight[i].got_interval = 1;
		else if (m->flight[i].id_state == id)
			m->flight[i].got_state = 1;
	}
	if (retire(m) < 0)
		fail(m, now_ms, "the outbox failed");
}

/* The echo of one of our interval messages: the broker has it (any connection's, see .h). */
static void on_echo(struct fw_mqtt *m, const struct fw_mqtt_event *ev)
{
	struct pl_mqtt_mark mk;

	if (pl_mqtt_parse_mark(ev->data, ev->data_len, &mk) == 0 &&
	    strcmp(mk.store, m->sink->owner->id_hex) == 0 &&
	    (!m->echo_mark || mk.seq > m->echo_seq)) {
		m->echo_seq = mk.seq;
		m->echo_mark = 1;
	}
}

void fw_mqtt_event(struct fw_mqtt *m, const struct fw_mqtt_event *ev, int64_t now_ms)
{
	if (ev != NULL && ev->type == FW_MQTT_EV_DATA && ev->data != NULL &&
	    topic_is(ev, m->t_interval)) {
		on_echo(m, ev);
		return;
	}
	if (ev == NULL || m->state == FW_MQTT_IDLE || ev->conn != m->conn)
		return; /* a stopped client's: nothing it says counts */
	switch (ev->type) {
	case FW_MQTT_EV_CONNECTED:
		if (m->state == FW_MQTT_CONNECTING)
			on_connected(m, now_ms);
		break;
	case FW_MQTT_EV_DISCONNECTED:
		fail(m, now_ms, "disconnected from the broker");
		break;
	case FW_MQTT_EV_PUBLISHED:
		on_published(m, ev->msg_id, now_ms);
		break;
	case FW_MQTT_EV_DATA:
		if (topic_is(ev, m->t_state)) {
			struct pl_mqtt_mark mk;

			if (pl_mqtt_parse_mark(ev->data, ev->data_len, &mk) == 0 &&
			    strcmp(mk.store, m->sink->owner->id_hex) == 0 &&
			    (!m->broker_mark || mk.seq > m->broker_seq)) {
				m->broker_seq = mk.seq;
				m->broker_mark = 1;
			}
		} else if (topic_is(ev, m->t_sync)) {
			if (m->state == FW_MQTT_SYNC && data_is(ev, m->token))
				sync_done(m, now_ms);
		} else if (discovery_on(m) && topic_is(ev, m->t_hastatus)) {
			if (data_is(ev, "online"))
				m->discovery_again = 1;
		}
		break;
	case FW_MQTT_EV_ERROR:
		break; /* esp-mqtt follows a fatal error with DISCONNECTED */
	}
}

/* Queues the state message of flight entry f (record r). 0, or -1 when the client refuses. */
static int queue_state(struct fw_mqtt *m, struct fw_mqtt_flight *f, const struct fw_record *r,
		       const struct pl_mqtt_mark *mk)
{
	int len = pl_mqtt_state_json(m->cfg.scratch, m->cfg.scratch_cap, &m->cfg.meter, &r->rec,
				     mk);
	int id;

	if (len < 0)
		return -1;
	id = publish(m, m->t_state, m->cfg.scratch, (size_t)len, 1, 1);
	if (id < 0)
		return -1;
	f->id_state = id;
	f->got_state = id == 0; /* QoS 1 ids are > 0; 0 only from a QoS 0 client */
	return 0;
}

/* Fills the window. 0, or a negative store error. */
static int fill(struct fw_mqtt *m, int64_t now_ms)
{
	struct fw_record r;
	struct pl_mqtt_mark mk;
	uint32_t seq;
	size_t got;
	int rc, len, id;

	memcpy(mk.store, m->sink->owner->id_hex, sizeof(m->sink->owner->id_hex));
	/* a state message the client refused first: its interval message is out already */
	if (m->nflight > 0 && m->flight[m->nflight - 1].id_state == 0 &&
	    !m->flight[m->nflight - 1].got_state) {
		struct fw_mqtt_flight *f = &m->flight[m->nflight - 1];

		rc = fw_store_peek_after(fw_sink_store(m->sink), f->seq - 1, &r, &seq, 1, &got);
		if (rc < 0)
			return rc;
		if (got == 0 || seq != f->seq) { /* skipped to make room meanwhile */
			f->got_state = f->got_interval = 1;
			return retire(m);
		}
		fw_time_stamp(m->time, &r);
		mk.seq = seq;
		if (queue_state(m, f, &r, &mk) < 0)
			return 0;
	}
	while (m->nflight < m->cfg.window) {
		struct fw_mqtt_flight *f = &m->flight[m->nflight];
		uint32_t after = m->last_queued > m->sink->cursor ? m->last_queued :
			m->sink->cursor;
		enum fw_stamp st;

		rc = fw_store_peek_after(fw_sink_store(m->sink), after, &r, &seq, 1, &got);
		if (rc < 0)
			return rc;
		if (got == 0)
			return 0;
		st = fw_time_stamp(m->time, &r);
		if (st == FW_STAMP_WAIT)
			return 0;
		memset(f, 0, sizeof(*f));
		f->seq = seq;
		f->sent_ms = now_ms;
		mk.seq = seq;
		len = st == FW_STAMP_OK ?
			pl_mqtt_interval_json(m->cfg.scratch, m->cfg.scratch_cap, &m->cfg.meter,
					      &r.rec, &mk) :
			-PL_ERANGE;
		if (len < 0) {
			/* passes through the window so the cursor still moves in order */
			m->unpublishable++;
			say(m, 1, "mqtt: record seq %lu cannot be published (%s); passed over",
			    (unsigned long)seq, st == FW_STAMP_NEVER ?
			    "no wall-clock time for its boot" : pl_strerror(len));
			f->got_interval = f->got_state = 1;
			m->nflight++;
			m->last_queued = seq;
			rc = retire(m);
			if (rc < 0)
				return rc;
			continue;
		}
		id = publish(m, m->t_interval, m->cfg.scratch, (size_t)len, 1, 0);
		if (id < 0)
			return 0; /* the client's outbox is full: later */
		f->id_interval = id;
		f->got_interval = id == 0;
		m->nflight++;
		m->last_queued = seq;
		m->published++;
		/* the state at once after it: the mark must lag by one message at most */
		if (queue_state(m, f, &r, &mk) < 0)
			return 0;
	}
	return 0;
}

static int same_str(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* Anything in P/M/diag but its time changed since this connection last published it. */
static int diag_changed(const struct fw_mqtt *m)
{
	const struct pl_mqtt_diag *a = &m->diag, *b = &m->diag_sent;

	return !m->diag_sent_valid || !same_str(a->detector_state, b->detector_state) ||
	       a->amplitude != b->amplitude || a->noise != b->noise ||
	       a->rejected_total != b->rejected_total || a->backlog != b->backlog;
}

static void publish_diag(struct fw_mqtt *m, int64_t now_ms)
{
	int len;

	m->diag.updated_us = m->time->synced ? now_ms * 1000 + m->time->offset_us : 0;
	len = pl_mqtt_diag_json(m->cfg.scratch, m->cfg.scratch_cap, &m->diag);
	if (len >= 0 && publish(m, m->t_diag, m->cfg.scratch, (size_t)len, 0, 1) >= 0) {
		m->diag_sent = m->diag;
		m->diag_sent_valid = 1;
		m->diags++;
	}
	/* refused (the client's outbox is full): tried again after the same pause */
	m->next_diag_ms = now_ms + m->cfg.diag_min_ms;
}

int fw_mqtt_step(struct fw_mqtt *m, int64_t now_ms, int net_up)
{
	int rc;

	if (m->sink->skipped != m->skipped_told) {
		say(m, 1, "mqtt: the outbox was full with MQTT behind: %lu oldest record(s) "
			  "skipped for MQTT (InfluxDB keeps them), %lu in all",
		    (unsigned long)(m->sink->skipped - m->skipped_told),
		    (unsigned long)m->sink->skipped);
		m->skipped_told = m->sink->skipped;
	}
	if (m->state == FW_MQTT_IDLE) {
		if (!net_up || now_ms < m->due_ms)
			return 0;
		m->conn++;
		if (m->ops->start(m->ctx, m->conn, m->t_avail) < 0) {
			m->state = FW_MQTT_CONNECTING; /* so that fail() stops what started */
			fail(m, now_ms, "cannot start the client");
			return 0;
		}
		m->state = FW_MQTT_CONNECTING;
		m->due_ms = now_ms + m->cfg.connect_timeout_ms;
		return 0;
	}
	if (!net_up) {
		fail(m, now_ms, "network down");
		return 0;
	}
	if (m->state != FW_MQTT_BACKLOG && m->state != FW_MQTT_LIVE) {
		if (now_ms >= m->due_ms)
			fail(m, now_ms, m->state == FW_MQTT_CONNECTING ? "no connection" :
			     m->state == FW_MQTT_SYNC ? "the sync token did not come back" :
			     "no PUBACK");
		return 0;
	}
	if (m->nflight > 0 && now_ms - m->flight[0].sent_ms >= m->cfg.sync_timeout_ms) {
		fail(m, now_ms, "no PUBACK for a record");
		return 0;
	}
	if (m->discovery_again && now_ms >= m->disc_retry_ms) {
		int id = publish_discovery(m, 0);

		if (id == -PL_ENOMEM) {
			discovery_later(m, now_ms);
		} else if (id >= 0) {
			say(m, 0, m->disc_nomem ? "mqtt: discovery published (memory found)" :
			    "mqtt: Home Assistant is back: discovery published again");
			m->discovery_again = 0;
			m->disc_nomem = 0;
		} /* refused by the client: the next step tries again */
	}
	rc = fill(m, now_ms);
	if (rc < 0) {
		fail(m, now_ms, "the outbox failed");
		return rc;
	}
	if (m->state == FW_MQTT_IDLE)
		return 0;
	m->state = fw_sink_count(m->sink) > m->nflight ? FW_MQTT_BACKLOG : FW_MQTT_LIVE;
	m->diag.backlog = fw_sink_count(m->sink);
	if (now_ms >= m->next_diag_ms && diag_changed(m))
		publish_diag(m, now_ms);
	return 0;
}

int64_t fw_mqtt_wait_ms(const struct fw_mqtt *m, int64_t now_ms)
{
	int64_t until = m->state == FW_MQTT_LIVE || m->state == FW_MQTT_BACKLOG ?
		m->next_diag_ms : m->due_ms;

	if (m->state != FW_MQTT_IDLE && m->discovery_again && m->disc_retry_ms < until)
		until = m->disc_retry_ms;

	return until > now_ms ? until - now_ms : 0;
}

const char *fw_mqtt_state_name(enum fw_mqtt_state s)
{
	switch (s) {
	case FW_MQTT_IDLE:
		return "idle";
	case FW_MQTT_CONNECTING:
		return "connecting";
	case FW_MQTT_SYNC:
		return "sync";
	case FW_MQTT_DISCOVERY:
		return "discovery";
	case FW_MQTT_AVAILABILITY:
		return "availability";
	case FW_MQTT_BACKLOG:
		return "backlog";
	case FW_MQTT_LIVE:
		return "live";
	}
	return "?";
}

int fw_mqtt_uri_host(const char *uri, char *buf, size_t cap, int *tls)
{
	char tmp[PL_MQTT_TOPIC_MAX + 8];
	const char *rest;
	int t, n;

	if (uri == NULL || buf == NULL)
		return -PL_EINVAL;
	if (strncmp(uri, "mqtt://", 7) == 0) {
		rest = uri + 7;
		t = 0;
	} else if (strncmp(uri, "mqtts://", 8) == 0) {
		rest = uri + 8;
		t = 1;
	} else {
		return -PL_EINVAL;
	}
	n = snprintf(tmp, sizeof(tmp), "http://%s", rest);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -PL_ENOSPC;
	if (tls != NULL)
		*tls = t;
	return fw_http_url_host(tmp, buf, cap);
}
