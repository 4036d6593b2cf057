/* SPDX-License-Identifier: MIT */
/*
 * Over-the-air update's decisions (see fw_ota.h): probation of a new image, the update checks'
 * schedule, the URL and version checks, and the download's progress.
 */
#include <stdio.h>
#include <string.h>

#include "fw_ota.h"
#include "powerlogger/common.h"

enum fw_ota_image fw_ota_image_state(int have_state, uint32_t img_state)
{
	if (!have_state)
		return FW_OTA_UNTRACKED;
	switch (img_state) {
	case FW_OTA_IMG_PENDING_VERIFY:
		return FW_OTA_PENDING;
	case FW_OTA_IMG_VALID:
		return FW_OTA_VALID;
	/* NEW is turned into PENDING_VERIFY by the bootloader before the image runs; an image
	 * running in any other state (UNDEFINED: written without rollback, or by an older
	 * bootloader) can boot without limits, as ESP-IDF treats it */
	default:
		return FW_OTA_UNTRACKED;
	}
}

const char *fw_ota_image_name(enum fw_ota_image image)
{
	switch (image) {
	case FW_OTA_PENDING: return "pending verify";
	case FW_OTA_VALID: return "valid";
	default: return "not tracked (flashed over USB)";
	}
}

void fw_ota_init(struct fw_ota *o, const struct fw_ota_config *cfg, enum fw_ota_image image,
		 int64_t now_ms)
{
	memset(o, 0, sizeof(*o));
	o->cfg = *cfg;
	if (o->cfg.verify_ms == 0)
		o->cfg.verify_ms = 1; /* 0 would be "at once": the soonest that means anything */
	o->image = image;
	o->boot_ms = now_ms;
	o->last_ms = now_ms;
	o->next_check_ms = -1;
	o->first_net_ms = -1;
}

void fw_ota_note_delivery(struct fw_ota *o, uint64_t records)
{
	o->deliveries += records;
}

int fw_ota_sink_seen(struct fw_ota *o, unsigned i, uint32_t cursor, uint64_t other_moves)
{
	int acked;

	if (i >= FW_OTA_SINKS)
		return 0;
	acked = o->sink[i].valid && cursor != o->sink[i].cursor && other_moves == o->sink[i].other;
	o->sink[i].cursor = cursor;
	o->sink[i].other = other_moves;
	o->sink[i].valid = 1;
	if (acked)
		fw_ota_note_delivery(o, 1);
	return acked;
}

int fw_ota_may_update(const struct fw_ota *o)
{
	return o->image != FW_OTA_PENDING;
}

static enum fw_ota_action probation(struct fw_ota *o, int64_t now_ms, int net_up)
{
	if (o->deliveries > 0 || (!o->cfg.has_sink && net_up)) {
		o->decided = 1;
		o->image = FW_OTA_VALID;
		if (o->deliveries > 0)
			snprintf(o->why, sizeof(o->why), "delivered %lu record(s) %.0f s after "
				 "boot", (unsigned long)o->deliveries,
				 (double)(now_ms - o->boot_ms) / 1e3);
		else
			snprintf(o->why, sizeof(o->why), "no sink configured: the network is up");
		return FW_OTA_MARK_VALID;
	}
	if (o->net_ms >= (int64_t)o->cfg.verify_ms) {
		o->decided = 1;
		snprintf(o->why, sizeof(o->why), "no record delivered in %.0f s with network",
			 (double)o->net_ms / 1e3);
		return FW_OTA_ROLL_BACK;
	}
	if (o->cfg.give_up_ms != 0 && now_ms - o->boot_ms >= (int64_t)o->cfg.give_up_ms) {
		o->decided = 1;
		snprintf(o->why, sizeof(o->why), "no record delivered in %.1f h since boot (%.0f s "
			 "of it with network)", (double)(now_ms - o->boot_ms) / 3.6e6,
			 (double)o->net_ms / 1e3);
		return FW_OTA_ROLL_BACK;
	}
	return FW_OTA_NONE;
}

enum fw_ota_action fw_ota_step(struct fw_ota *o, int64_t now_ms, int net_up)
{
	int64_t dt = now_ms - o->last_ms;

	o->last_ms = now_ms;
	if (dt < 0)
		dt = 0;
	if (net_up && o->first_net_ms < 0) {
		o->first_net_ms = now_ms;
		dt = 0; /* up from now on, not since the step before */
	}
	if (o->image == FW_OTA_PENDING) {
		if (o->decided)
			return FW_OTA_NONE; /* rolling back: the platform reboots */
		if (net_up)
			o->net_ms += dt;
		return probation(o, now_ms, net_up);
	}
	/* no check until the network has been up a while; then every check_ms */
	if (o->first_net_ms < 0)
		return FW_OTA_NONE;
	if (o->next_check_ms < 0)
		o->next_check_ms = o->first_net_ms + FW_OTA_FIRST_CHECK_MS;
	if (o->next_check_ms == INT64_MAX || now_ms < o->next_check_ms || !net_up)
		return FW_OTA_NONE;
	o->next_check_ms = o->cfg.check_ms != 0 ? now_ms + (int64_t)o->cfg.check_ms : INT64_MAX;
	return FW_OTA_CHECK;
}

/* ---- checks ---- */

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int has_prefix_ci(const char *s, const char *p)
{
	for (; *p != '\0'; s++, p++)
		if (lower((unsigned char)*s) != *p)
			return 0;
	return 1;
}

int fw_ota_check_url(const char *url, int allow_http, char *why, size_t cap)
{
	const char *host;
	size_t n, i;

	if (url == NULL || url[0] == '\0') {
		snprintf(why, cap, "no update URL is set");
		return -PL_EINVAL;
	}
	n = strlen(url);
	if (n >= FW_OTA_URL_MAX) {
		snprintf(why, cap, "the URL is longer than %d bytes", FW_OTA_URL_MAX - 1);
		return -PL_EINVAL;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c <= ' ' || c == 0x7f) {
			snprintf(why, cap, "the URL has a space or control character at %u",
				 (unsigned)i);
			return -PL_EINVAL;
		}
	}
	if (has_prefix_ci(url, "https://")) {
		host = url + 8;
	} else if (has_prefix_ci(url, "http://")) {
		if (!allow_http) {
			snprintf(why, cap, "http:// is refused: the image would come "
				 "unauthenticated (use https://, or allow HTTP in menuconfig for a "
				 "test network)");
			return -PL_EINVAL;
		}
		host = url + 7;
	} else {
		snprintf(why, cap, "the URL must start with https://");
		return -PL_EINVAL;
	}
	for (i = 0; host[i] != '\0' && host[i] != '/' && host[i] != '?' && host[i] != '#'; i++) {
		if (host[i] == '@') {
			/* said without the URL: the part before '@' is a password */
			snprintf(why, cap, "no user name or password in the URL: it is logged (the "
				 "server must serve the image without them)");
			return -PL_EINVAL;
		}
	}
	if (i == 0 || host[0] == ':') {
		snprintf(why, cap, "the URL has no host name");
		return -PL_EINVAL;
	}
	if (host[i] != '/' || host[i + 1] == '\0') {
		snprintf(why, cap, "the URL names no file (https://HOST/path/powerlogger.bin)");
		return -PL_EINVAL;
	}
	return 0;
}

struct version {
	unsigned long num[4];
	unsigned long commits;    /* -N-gHASH: commits after the tag */
	int nnum;
};

static int digit(char c)
{
	return c >= '0' && c <= '9';
}

static unsigned long number(const char **s)
{
	unsigned long v = 0;

	while (digit(**s)) {
		if (v < 100000000ul)
			v = v * 10 + (unsigned long)(**s - '0');
		(*s)++;
	}
	return v;
}

/* 0 when s is [v]MAJOR[.MINOR[.PATCH[.TWEAK]]][-N-gHASH][-dirty] */
static int parse_version(const char *s, struct version *v)
{
	memset(v, 0, sizeof(*v));
	if (*s == 'v' || *s == 'V')
		s++;
	if (!digit(*s))
		return -1;
	for (;;) {
		if (v->nnum == 4)
			return -1;
		v->num[v->nnum++] = number(&s);
		if (*s != '.')
			break;
		s++;
		if (!digit(*s))
			return -1;
	}
	if (*s == '-' && digit(s[1])) {
		s++;
		v->commits = number(&s);
		if (s[0] != '-' || s[1] != 'g' || s[2] == '\0')
			return -1;
		for (s += 2; (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'); s++)
			;
	}
	if (strcmp(s, "-dirty") == 0)
		s += 6;
	return *s == '\0' ? 0 : -1;
}

int fw_ota_version_cmp(const char *a, const char *b)
{
	struct version va, vb;
	int i;

	if (strcmp(a, b) == 0)
		return 0;
	if (parse_version(a, &va) != 0 || parse_version(b, &vb) != 0)
		return -2;
	for (i = 0; i < 4; i++) {
		if (va.num[i] != vb.num[i])
			return va.num[i] < vb.num[i] ? -1 : 1;
	}
	if (va.commits != vb.commits)
		return va.commits < vb.commits ? -1 : 1;
	/* the same release and distance from it: another commit or a dirty tree, no order;
	 * without a hash on either (1.0 and 1.0.0) the same */
	return strchr(a, '-') == NULL && strchr(b, '-') == NULL ? 0 : -2;
}

/* a name of 1 to cap - 1 bytes, its NUL within cap (esp_app_desc_t's fields are char[32]) */
static int terminated(const char *s, size_t cap)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return 0;
	for (i = 1; i < cap; i++)
		if (s[i] == '\0')
			return 1;
	return 0;
}

enum fw_ota_verdict fw_ota_check_image(const char *run_project, const char *run_version,
				       const char *new_project, const char *new_version,
				       const char *failed, unsigned flags, char *why, size_t cap)
{
	int forced = (flags & FW_OTA_FORCE) != 0;
	int c;

	if (!terminated(new_project, FW_OTA_VERSION_MAX) ||
	    !terminated(new_version, FW_OTA_VERSION_MAX)) {
		snprintf(why, cap, "the image has no project name or version");
		return FW_OTA_BAD_DESC;
	}
	if (strcmp(new_project, run_project) != 0) {
		snprintf(why, cap, "the image is \"%s\", not \"%s\"", new_project, run_project);
		return FW_OTA_FOREIGN;
	}
	c = fw_ota_version_cmp(new_version, run_version);
	if (c == 0 && !forced) {
		snprintf(why, cap, "version %s is running already", run_version);
		return FW_OTA_SAME;
	}
	if (c == -1 && !forced) {
		snprintf(why, cap, "version %s is older than the running %s", new_version,
			 run_version);
		return FW_OTA_OLDER;
	}
	if (failed != NULL && failed[0] != '\0' && strcmp(failed, new_version) == 0 && !forced) {
		snprintf(why, cap, "version %s was rolled back from before (it delivered nothing "
			 "or crashed)", new_version);
		return FW_OTA_FAILED_BEFORE;
	}
	if (c == -2 && (flags & FW_OTA_AUTO) != 0 && !forced) {
		snprintf(why, cap, "version %s cannot be told newer than the running %s (tag the "
			 "releases; push it from the console to install it anyway)", new_version,
			 run_version);
		return FW_OTA_UNORDERED;
	}
	snprintf(why, cap, "version %s over %s%s", new_version, run_version,
		 c == -2 ? " (versions not comparable: different)" :
		 c == 1 ? "" : " (forced)");
	return FW_OTA_GO;
}

/* ---- the restart ---- */

void fw_ota_restart_ask(struct fw_ota_restart *r, int64_t now_ms, uint32_t popped)
{
	r->asked_ms = now_ms;
	r->popped = popped;
	r->asked = 1;
}

int fw_ota_restart_due(const struct fw_ota_restart *r, int64_t now_ms, uint32_t popped,
		       uint32_t in_ring, uint32_t interval_ms)
{
	int64_t wait = (int64_t)interval_ms + 5000, waited = now_ms - r->asked_ms;

	if (!r->asked)
		return 0;
	if (wait > FW_OTA_RESTART_WAIT_MAX_MS)
		wait = FW_OTA_RESTART_WAIT_MAX_MS;
	if (waited >= 2 * wait)
		return 1;
	return in_ring == 0 && (popped != r->popped || waited >= wait);
}

/* ---- progress ---- */

#define STEP_UNKNOWN (128 * 1024)

void fw_ota_progress_init(struct fw_ota_progress *p, int64_t total)
{
	p->total = total > 0 ? total : 0;
	p->pct = -1;
	p->next = p->total > 0 ? (p->total + 9) / 10 : STEP_UNKNOWN;
}

int fw_ota_progress(struct fw_ota_progress *p, int64_t done)
{
	if (p->total == 0) {
		if (done < p->next)
			return 0;
		p->next = (done / STEP_UNKNOWN + 1) * STEP_UNKNOWN;
		return 1;
	}
	if (done > p->total)
		done = p->total;
	if (done < p->next || p->pct == 100)
		return 0;
	p->pct = (int)(done * 100 / p->total);
	p->pct -= p->pct % 10;
	if (done == p->total)
		p->pct = 100;
	/* the next report at the next multiple of 10 % */
	p->next = (p->total * (p->pct / 10 + 1) + 9) / 10;
	if (p->pct < 100 && p->next > p->total)
		p->next = p->total;
	return 1;
}
