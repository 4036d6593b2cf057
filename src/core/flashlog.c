/* SPDX-License-Identifier: MIT */
/*
 * The power-fail-safe record log on NOR flash (format and guarantees in flashlog.h).
 *
 * The sectors form a ring. The "run" is the contiguous stretch from the tail (oldest sector) to
 * the head (the one being written), with epochs rising by one per sector; every other sector is
 * erased. A mount finds the head as the valid sector with the highest epoch and walks back while
 * the epochs keep falling by one; whatever is outside that run and not blank is debris of a cut
 * (a torn sector header or a half-done erase) and is erased.
 *
 * Every write goes to the head at head_off, at addresses never programmed since the erase, so a
 * cut can only damage the one record being written; the length word written first tells every
 * later reader how far to skip. Reclaiming the tail copies what must outlive it (the newest ack,
 * the newest record of each kept type) to the head first, and only then erases; so a half-erased
 * tail holds nothing that is not also elsewhere, and the next mount simply erases it again.
 *
 * Space rules, which keep acknowledgement possible when the log is full: data records may not
 * take the last free sector, and may not be written at all while no sector is free; the
 * acknowledgements and reclaim copies use that reserve. pl_flashlog_min_sector() makes the
 * sector large enough that the reserve always suffices (see there).
 */
#include "powerlogger/flashlog.h"

#include <string.h>

#define SHDR_SIZE 16u
#define RHDR_SIZE 12u
#define SECTOR_MAGIC 0x4C464C50u /* "PLFL" */
#define COMMIT_MAGIC 0xC0DE5AA5u
#define NONE UINT32_MAX
#define CHUNK 64u /* bounce buffer: a multiple of every write_align */

enum { REC_END, REC_BAD, REC_OK };

/* What parse_record() found at an offset. */
struct rec_info {
	uint32_t fp; /* bytes to the next record (REC_BAD and REC_OK) */
	uint32_t crc;
	struct pl_flashlog_rec r;
};

/* Where an appended record's payload comes from: the caller's memory or a record on flash. */
struct payload_src {
	const uint8_t *mem;
	uint32_t addr;
};

/* CRC-32 (IEEE 802.3, reflected), with a 16-entry table: 64 bytes of constants. */
static const uint32_t crc_nibble[16] = {
	0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
	0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
	0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
	while (n--) {
		crc ^= *p++;
		crc = (crc >> 4) ^ crc_nibble[crc & 15u];
		crc = (crc >> 4) ^ crc_nibble[crc & 15u];
	}
	return crc;
}

static uint32_t get16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t align_up(uint32_t v, uint32_t a)
{
	return (v + a - 1) / a * a;
}

static int all_ff(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++ != 0xFF)
			return 0;
	return 1;
}

static uint32_t word_size(uint32_t align)
{
	return align_up(4, align);
}

static uint32_t ack_footprint(uint32_t align)
{
	return 2 * word_size(align) + align_up(RHDR_SIZE + 4, align);
}

static uint32_t max_footprint(uint32_t align)
{
	return 2 * word_size(align) + align_up(RHDR_SIZE + PL_FLASHLOG_MAX_PAYLOAD, align);
}

static int align_ok(uint32_t a)
{
	return a == 1 || a == 2 || a == 4 || a == 8 || a == 16;
}

/*
 * While the log is full, each acknowledgement that lets go of at least one more record of the
 * tail adds an ack record; with data records at least twice an ack's size, the acks a tail can
 * need take at most half of a sector's room. The free sector held back must take those, one
 * more ack, and the copies of a reclaim: hence (S - header) >= 2 * (copies + 2 acks).
 */
uint32_t pl_flashlog_min_sector(uint32_t write_align)
{
	uint32_t need;

	if (!align_ok(write_align))
		return 0;
	need = PL_FLASHLOG_KEEP_TYPES * max_footprint(write_align) + 2 * ack_footprint(write_align);
	return align_up(SHDR_SIZE + 2 * need, write_align);
}

static uint32_t footprint(const struct pl_flashlog *log, uint8_t type, uint32_t len)
{
	uint32_t fp = 2 * log->lw + align_up(RHDR_SIZE + len, log->fl.write_align);

	if (type != PL_FLASHLOG_TYPE_ACK && fp < log->data_min)
		fp = log->data_min;
	return fp;
}

static uint32_t ring_next(const struct pl_flashlog *log, uint32_t s)
{
	return s + 1 == log->fl.sector_count ? 0 : s + 1;
}

static uint32_t ring_prev(const struct pl_flashlog *log, uint32_t s)
{
	return s == 0 ? log->fl.sector_count - 1 : s - 1;
}

/* Steps from sector a forward to sector b. */
static uint32_t ring_dist(const struct pl_flashlog *log, uint32_t a, uint32_t b)
{
	return b >= a ? b - a : b + log->fl.sector_count - a;
}

static int in_run(const struct pl_flashlog *log, uint32_t s)
{
	return s < log->fl.sector_count &&
	       ring_dist(log, log->tail, s) <= ring_dist(log, log->tail, log->head);
}

static uint32_t epoch_of(const struct pl_flashlog *log, uint32_t s)
{
	return log->head_epoch - ring_dist(log, s, log->head);
}

/* Flash access; any failure leaves the log broken until the next mount. */
static int fl_read(const struct pl_flashlog *log, uint32_t s, uint32_t off, void *buf, size_t n)
{
	if (log->fl.read(log->fl.ctx, s * log->fl.sector_size + off, buf, n) != 0)
		return -PL_EIO;
	return 0;
}

static int fl_program(struct pl_flashlog *log, uint32_t s, uint32_t off, const void *buf, size_t n)
{
	if (log->fl.program(log->fl.ctx, s * log->fl.sector_size + off, buf, n) != 0) {
		log->broken = 1;
		return -PL_EIO;
	}
	return 0;
}

static int fl_erase(struct pl_flashlog *log, uint32_t s)
{
	if (log->fl.erase(log->fl.ctx, s) != 0) {
		log->broken = 1;
		return -PL_EIO;
	}
	return 0;
}

/* Sector header: 1 valid (epoch and base filled), 0 not. */
static int read_sector_header(const struct pl_flashlog *log, uint32_t s, uint32_t *epoch,
			      uint32_t *base, int *err)
{
	uint8_t h[SHDR_SIZE];

	*err = fl_read(log, s, 0, h, sizeof(h));
	if (*err)
		return 0;
	if (get32(h) != SECTOR_MAGIC || get32(h + 12) != ~crc_update(~0u, h, 12))
		return 0;
	*epoch = get32(h + 4);
	*base = get32(h + 8);
	return 1;
}

static int sector_blank(const struct pl_flashlog *log, uint32_t s, uint32_t from, int *err)
{
	uint8_t buf[CHUNK];
	uint32_t off;

	for (off = from; off < log->fl.sector_size; off += CHUNK) {
		uint32_t n = log->fl.sector_size - off < CHUNK ? log->fl.sector_size - off : CHUNK;

		*err = fl_read(log, s, off, buf, n);
		if (*err || !all_ff(buf, n))
			return 0;
	}
	return 1;
}

/*
 * Reads and checks the record at (s, off). REC_END: blank length word (nothing written here or
 * after). REC_BAD: skip ri->fp bytes (a torn length word is one word; otherwise the length word
 * says). REC_OK: a whole record; its payload is copied to out if out is not NULL (cap must then
 * be at least its length). Returns the kind, or a negative error.
 */
static int parse_record(const struct pl_flashlog *log, uint32_t s, uint32_t off,
			struct rec_info *ri, uint8_t *out)
{
	uint32_t S = log->fl.sector_size, A = log->fl.write_align, lw = log->lw;
	uint8_t buf[CHUNK];
	uint32_t fp, crc, len, pos, end;
	int err;

	if (off + lw > S)
		return REC_END;
	err = fl_read(log, s, off, buf, lw);
	if (err)
		return err;
	if (all_ff(buf, lw))
		return REC_END;
	ri->fp = lw;
	fp = get16(buf);
	if ((get16(buf + 2) ^ fp) != 0xFFFFu || fp % A != 0 || fp < log->ack_fp ||
	    fp > S - off)
		return REC_BAD;
	ri->fp = fp;
	err = fl_read(log, s, off + lw, buf, RHDR_SIZE);
	if (err)
		return err;
	ri->r.type = buf[0];
	ri->r.flags = buf[1];
	len = get16(buf + 2);
	ri->r.len = (uint16_t)len;
	ri->r.seq = get32(buf + 4);
	ri->crc = get32(buf + 8);
	if (len > PL_FLASHLOG_MAX_PAYLOAD || footprint(log, ri->r.type, len) != fp)
		return REC_BAD;
	crc = crc_update(~0u, buf, 8);
	pos = off + lw + RHDR_SIZE;
	end = pos + len;
	while (pos < end) {
		uint32_t n = end - pos < CHUNK ? end - pos : CHUNK;
		uint8_t *dst = out ? out + (pos - (off + lw + RHDR_SIZE)) : buf;

		err = fl_read(log, s, pos, dst, n);
		if (err)
			return err;
		crc = crc_update(crc, dst, n);
		pos += n;
	}
	err = fl_read(log, s, off + lw + align_up(RHDR_SIZE + len, A), buf, 4);
	if (err)
		return err;
	if (get32(buf) != COMMIT_MAGIC || ~crc != ri->crc || ri->r.seq == 0)
		return REC_BAD;
	return REC_OK;
}

static int delivered_kind(const struct pl_flashlog_rec *r)
{
	return r->type != PL_FLASHLOG_TYPE_ACK && !(r->flags & PL_FLASHLOG_F_COPY);
}

/* The newest seq of a delivered-kind record in sector s (0 if none). */
static int scan_last_data(const struct pl_flashlog *log, uint32_t s, uint32_t *last)
{
	struct rec_info ri;
	uint32_t off = SHDR_SIZE;
	int k;

	*last = 0;
	for (;;) {
		k = parse_record(log, s, off, &ri, NULL);
		if (k < 0)
			return k;
		if (k == REC_END)
			return 0;
		if (k == REC_OK && delivered_kind(&ri.r) && ri.r.seq > *last)
			*last = ri.r.seq;
		off += ri.fp;
	}
}

static void get_payload(const struct pl_flashlog *log, const struct payload_src *src,
			uint32_t at, uint8_t *dst, uint32_t n, int *err)
{
	if (src->mem)
		memcpy(dst, src->mem + at, n);
	else if (*err == 0)
		*err = fl_read(log, 0, src->addr + at, dst, n); /* addr is absolute */
}

/*
 * Writes one record at the head, where the caller made room. Three program steps (length word,
 * header and payload in chunks, commit word), so that a cut leaves something parse_record()
 * can step over.
 */
static int write_record(struct pl_flashlog *log, uint8_t type, uint8_t flags,
			const struct payload_src *src, uint32_t len, uint32_t *seq_out)
{
	uint32_t A = log->fl.write_align, lw = log->lw;
	uint32_t fp = footprint(log, type, len);
	uint32_t body = align_up(RHDR_SIZE + len, A);
	uint32_t seq = log->next_seq, crc, pos, off = log->head_off;
	uint8_t hdr[RHDR_SIZE], buf[CHUNK];
	int err = 0;

	hdr[0] = type;
	hdr[1] = flags;
	hdr[2] = (uint8_t)len;
	hdr[3] = (uint8_t)(len >> 8);
	put32(hdr + 4, seq);
	crc = crc_update(~0u, hdr, 8);
	for (pos = 0; pos < len; pos += CHUNK) {
		uint32_t n = len - pos < CHUNK ? len - pos : CHUNK;

		get_payload(log, src, pos, buf, n, &err);
		if (err)
			return err;
		crc = crc_update(crc, buf, n);
	}
	put32(hdr + 8, ~crc);

	memset(buf, 0xFF, lw);
	buf[0] = (uint8_t)fp;
	buf[1] = (uint8_t)(fp >> 8);
	buf[2] = (uint8_t)~fp;
	buf[3] = (uint8_t)(~fp >> 8);
	err = fl_program(log, log->head, off, buf, lw);
	if (err)
		return err;

	/* header then payload then 0xFF padding, streamed through the bounce buffer */
	for (pos = 0; pos < body; pos += CHUNK) {
		uint32_t n = body - pos < CHUNK ? body - pos : CHUNK, i = 0;

		memset(buf, 0xFF, n);
		while (i < n && pos + i < RHDR_SIZE) {
			buf[i] = hdr[pos + i];
			i++;
		}
		if (pos + i < RHDR_SIZE + len) {
			uint32_t from = pos + i - RHDR_SIZE;
			uint32_t m = RHDR_SIZE + len - (pos + i);

			if (m > n - i)
				m = n - i;
			get_payload(log, src, from, buf + i, m, &err);
			if (err)
				return err;
		}
		err = fl_program(log, log->head, off + lw + pos, buf, n);
		if (err)
			return err;
	}

	memset(buf, 0xFF, lw);
	put32(buf, COMMIT_MAGIC);
	err = fl_program(log, log->head, off + lw + body, buf, lw);
	if (err)
		return err;

	log->head_off += fp;
	log->next_seq++;
	if (type < PL_FLASHLOG_KEEP_TYPES) {
		log->keep[type].seq = seq;
		log->keep[type].sector = (uint16_t)log->head;
		log->keep[type].off = (uint16_t)off;
		log->keep[type].fp = (uint16_t)fp;
	}
	if (log->head == log->tail && delivered_kind(&(struct pl_flashlog_rec){.type = type,
									       .flags = flags}))
		log->tail_last_data = seq;
	if (seq_out)
		*seq_out = seq;
	return 0;
}

/* Opens the free sector after the head. The caller checked that one is free. */
static int open_sector(struct pl_flashlog *log)
{
	uint32_t s = ring_next(log, log->head);
	uint8_t h[SHDR_SIZE];
	int err;

	put32(h, SECTOR_MAGIC);
	put32(h + 4, log->head_epoch + 1);
	put32(h + 8, log->next_seq);
	put32(h + 12, ~crc_update(~0u, h, 12));
	err = fl_program(log, s, 0, h, sizeof(h));
	if (err)
		return err;
	log->head = s;
	log->head_off = SHDR_SIZE;
	log->head_epoch++;
	log->nfree--;
	return 0;
}

static int write_ack(struct pl_flashlog *log, uint32_t value)
{
	uint8_t p[4];
	struct payload_src src = {.mem = p};
	int err;

	put32(p, value);
	err = write_record(log, PL_FLASHLOG_TYPE_ACK, 0, &src, 4, NULL);
	if (err)
		return err;
	log->acked = value;
	log->ack_sector = log->head;
	return 0;
}

/* Erases the tail, after carrying forward what must outlive it. */
static int reclaim(struct pl_flashlog *log)
{
	uint32_t t = log->tail, need = 0, k;
	int err;

	if (log->ack_sector == t)
		need += log->ack_fp;
	for (k = 0; k < PL_FLASHLOG_KEEP_TYPES; k++)
		if (log->keep[k].seq != 0 && log->keep[k].sector == t)
			need += log->keep[k].fp;
	/* All copies go to one sector, so the reserve arithmetic of min_sector holds. */
	if (log->head_off + need > log->fl.sector_size) {
		if (log->nfree < 1)
			return -PL_ENOSPC;
		err = open_sector(log);
		if (err)
			return err;
	}
	if (log->ack_sector == t) {
		err = write_ack(log, log->acked);
		if (err)
			return err;
	}
	for (k = 0; k < PL_FLASHLOG_KEEP_TYPES; k++) {
		struct rec_info ri;
		struct payload_src src;

		if (log->keep[k].seq == 0 || log->keep[k].sector != t)
			continue;
		err = parse_record(log, t, log->keep[k].off, &ri, NULL);
		if (err < 0)
			return err;
		if (err != REC_OK) /* cannot happen unless the flash rots; lose it, not the log */
			continue;
		src.mem = NULL;
		src.addr = t * log->fl.sector_size + log->keep[k].off + log->lw + RHDR_SIZE;
		err = write_record(log, (uint8_t)k, PL_FLASHLOG_F_COPY, &src, ri.r.len, NULL);
		if (err)
			return err;
	}
	err = fl_erase(log, t);
	if (err)
		return err;
	log->nfree++;
	log->tail = ring_next(log, t);
	for (k = 0; k < PL_FLASHLOG_KEEP_TYPES; k++)
		if (log->keep[k].seq != 0 && log->keep[k].sector == t)
			log->keep[k].seq = 0;
	return scan_last_data(log, log->tail, &log->tail_last_data);
}

/* Reclaims fully acknowledged sectors while fewer than two sectors are free. */
static int maintain(struct pl_flashlog *log)
{
	int err;

	while (log->nfree < 2 && log->tail != log->head && log->tail_last_data <= log->acked) {
		err = reclaim(log);
		if (err)
			return err;
	}
	return 0;
}

static int usable(const struct pl_flashlog *log)
{
	if (log == NULL || !log->mounted)
		return -PL_EINVAL;
	return log->broken ? -PL_EIO : 0;
}

static int geometry_ok(const struct pl_flash *f)
{
	if (!f->read || !f->program || !f->erase || !align_ok(f->write_align))
		return 0;
	if (f->sector_count < PL_FLASHLOG_MIN_SECTORS || f->sector_size > PL_FLASHLOG_MAX_SECTOR ||
	    f->sector_size < pl_flashlog_min_sector(f->write_align) ||
	    f->sector_size % f->write_align != 0)
		return 0;
	/* the ring's size must fit a 32-bit address, and sector numbers 16 bits */
	return f->sector_count <= UINT16_MAX &&
	       (uint64_t)f->sector_size * f->sector_count <= UINT32_MAX;
}

/* No log on flash: blank everything and open sector 0. */
static int format(struct pl_flashlog *log)
{
	uint32_t s;
	int err = 0;

	for (s = 0; s < log->fl.sector_count; s++) {
		if (sector_blank(log, s, 0, &err))
			continue;
		if (err)
			return err;
		err = fl_erase(log, s);
		if (err)
			return err;
		log->mount_erases++;
	}
	log->formatted = 1;
	log->head = ring_prev(log, 0);
	log->tail = 0;
	log->head_epoch = 0;
	log->nfree = log->fl.sector_count;
	log->next_seq = 1;
	return open_sector(log);
}

/* Reads the run tail to head: acks, kept records, sequence numbers, the head's free space. */
static int scan_run(struct pl_flashlog *log)
{
	uint32_t s = log->tail, max_seq = 0, epoch, base, next_base;
	int err, k;

	for (;;) {
		struct rec_info ri;
		uint32_t off = SHDR_SIZE, last = 0, last_data = 0;
		uint32_t ns = ring_next(log, s);

		if (!read_sector_header(log, s, &epoch, &base, &err))
			return err ? err : -PL_ECORRUPT;
		next_base = UINT32_MAX;
		if (s != log->head && !read_sector_header(log, ns, &epoch, &next_base, &err))
			return err ? err : -PL_ECORRUPT;
		if (base > max_seq)
			max_seq = base - 1;
		for (;;) {
			k = parse_record(log, s, off, &ri, NULL);
			if (k < 0)
				return k;
			if (k == REC_END)
				break;
			/* a record outside its sector's range or out of order is not trusted */
			if (k == REC_OK && ri.r.seq >= base && ri.r.seq < next_base &&
			    ri.r.seq > last) {
				last = ri.r.seq;
				if (ri.r.seq > max_seq)
					max_seq = ri.r.seq;
				if (ri.r.type == PL_FLASHLOG_TYPE_ACK) {
					uint8_t p[4];

					err = fl_read(log, s, off + log->lw + RHDR_SIZE, p, 4);
					if (err)
						return err;
					if (ri.r.len == 4 && get32(p) >= log->acked &&
					    get32(p) < ri.r.seq) {
						log->acked = get32(p);
						log->ack_sector = s;
					}
				} else {
					if (ri.r.type < PL_FLASHLOG_KEEP_TYPES) {
						log->keep[ri.r.type].seq = ri.r.seq;
						log->keep[ri.r.type].sector = (uint16_t)s;
						log->keep[ri.r.type].off = (uint16_t)off;
						log->keep[ri.r.type].fp = (uint16_t)ri.fp;
					}
					if (delivered_kind(&ri.r))
						last_data = ri.r.seq;
				}
			}
			off += ri.fp;
		}
		if (s == log->tail)
			log->tail_last_data = last_data;
		if (s == log->head) {
			log->head_off = off;
			/* Beyond the last record the head must be blank to be written; it always is
			 * after a power cut, so anything else is damage: write no more there. */
			if (!sector_blank(log, s, off, &err)) {
				if (err)
					return err;
				log->head_off = log->fl.sector_size;
			}
			break;
		}
		s = ns;
	}
	if (max_seq == UINT32_MAX)
		max_seq--;
	log->next_seq = max_seq + 1;
	return 0;
}

int pl_flashlog_mount(struct pl_flashlog *log, const struct pl_flash *flash)
{
	uint32_t s, n, best_epoch = 0, epoch, base, cur_epoch, cur_base, runlen;
	int found = 0, err;

	if (log == NULL || flash == NULL || !geometry_ok(flash))
		return -PL_EINVAL;
	memset(log, 0, sizeof(*log));
	log->fl = *flash;
	log->lw = word_size(flash->write_align);
	log->ack_fp = ack_footprint(flash->write_align);
	log->data_min = 2 * log->ack_fp;
	log->ack_sector = NONE;
	n = flash->sector_count;

	for (s = 0; s < n; s++) {
		if (read_sector_header(log, s, &epoch, &base, &err) &&
		    (!found || epoch > best_epoch)) {
			found = 1;
			best_epoch = epoch;
			log->head = s;
		}
		if (err)
			return err;
	}
	if (!found) {
		err = format(log);
		if (err)
			return err;
		log->mounted = 1;
		return 0;
	}

	/* walk back from the head while each sector is the previous one's predecessor */
	log->head_epoch = best_epoch;
	read_sector_header(log, log->head, &cur_epoch, &cur_base, &err);
	log->tail = log->head;
	for (runlen = 1; runlen < n; runlen++) {
		s = ring_prev(log, log->tail);
		if (!read_sector_header(log, s, &epoch, &base, &err) || epoch != cur_epoch - 1 ||
		    base > cur_base || cur_epoch == 0)
			break;
		log->tail = s;
		cur_epoch = epoch;
		cur_base = base;
	}
	if (err)
		return err;

	/* everything else must be blank: erase torn headers and half-erased sectors */
	log->nfree = n - runlen;
	for (s = ring_next(log, log->head); s != log->tail; s = ring_next(log, s)) {
		if (sector_blank(log, s, 0, &err))
			continue;
		if (err)
			return err;
		err = fl_erase(log, s);
		if (err)
			return err;
		log->mount_erases++;
	}

	err = scan_run(log);
	if (err)
		return err;
	log->mounted = 1;
	/* finish a reclaim a cut interrupted, or one an ack made possible just before it */
	return maintain(log);
}

int pl_flashlog_append(struct pl_flashlog *log, uint8_t type, const void *data, size_t len,
		       uint32_t *seq)
{
	struct payload_src src = {.mem = data};
	uint32_t fp;
	int err = usable(log);

	if (err)
		return err;
	if (type == PL_FLASHLOG_TYPE_ACK || len > PL_FLASHLOG_MAX_PAYLOAD ||
	    (data == NULL && len > 0))
		return -PL_EINVAL;
	if (log->next_seq == UINT32_MAX)
		return -PL_ERANGE;
	fp = footprint(log, type, (uint32_t)len);
	if (log->nfree < 2) {
		err = maintain(log);
		if (err)
			return err;
	}
	/* With no sector free, the head's room is the acknowledgements' reserve. */
	if (log->nfree < 1)
		return -PL_ENOSPC;
	if (log->head_off + fp > log->fl.sector_size) {
		if (log->nfree < 2)
			return -PL_ENOSPC;
		err = open_sector(log);
		if (err)
			return err;
	}
	if (len == 0)
		src.mem = (const uint8_t *)"";
	return write_record(log, type, 0, &src, (uint32_t)len, seq);
}

int pl_flashlog_ack(struct pl_flashlog *log, uint32_t upto_seq)
{
	int err = usable(log);

	if (err)
		return err;
	if (upto_seq >= log->next_seq)
		return -PL_EINVAL;
	if (upto_seq <= log->acked)
		return 0;
	if (log->head_off + log->ack_fp > log->fl.sector_size) {
		if (log->nfree < 1)
			return -PL_ENOSPC;
		err = open_sector(log);
		if (err)
			return err;
	}
	err = write_ack(log, upto_seq);
	if (err)
		return err;
	return maintain(log);
}

uint32_t pl_flashlog_acked(const struct pl_flashlog *log)
{
	return log ? log->acked : 0;
}

void pl_flashlog_rewind(const struct pl_flashlog *log, struct pl_flashlog_cursor *cur)
{
	cur->sector = log->tail;
	cur->off = SHDR_SIZE;
	cur->epoch = epoch_of(log, log->tail);
	cur->last_seq = log->acked;
}

/* Reads a delivered record's payload again into the caller's buffer and checks it. */
static int read_payload(const struct pl_flashlog *log, uint32_t s, uint32_t off,
			const struct rec_info *want, void *buf)
{
	struct rec_info ri;
	int k = parse_record(log, s, off, &ri, buf);

	if (k < 0)
		return k;
	if (k != REC_OK || ri.crc != want->crc || ri.r.seq != want->r.seq)
		return -PL_ECORRUPT; /* it changed under us: the flash is failing */
	return 0;
}

int pl_flashlog_next(const struct pl_flashlog *log, struct pl_flashlog_cursor *cur,
		     struct pl_flashlog_rec *rec, void *buf, size_t cap)
{
	struct rec_info ri;
	int err = usable(log), k;

	if (err)
		return err;
	if (cur == NULL || rec == NULL || (buf == NULL && cap > 0))
		return -PL_EINVAL;
	if (cur->last_seq < log->acked)
		cur->last_seq = log->acked;
	/* its sector reclaimed (and perhaps reused) since: start over from the tail */
	if (!in_run(log, cur->sector) || epoch_of(log, cur->sector) != cur->epoch ||
	    cur->off < SHDR_SIZE) {
		cur->sector = log->tail;
		cur->off = SHDR_SIZE;
		cur->epoch = epoch_of(log, log->tail);
	}
	for (;;) {
		k = parse_record(log, cur->sector, cur->off, &ri, NULL);
		if (k < 0)
			return k;
		if (k == REC_END) {
			if (cur->sector == log->head)
				return -PL_ENOENT;
			cur->sector = ring_next(log, cur->sector);
			cur->off = SHDR_SIZE;
			cur->epoch++;
			continue;
		}
		if (k == REC_OK && delivered_kind(&ri.r) && ri.r.seq > cur->last_seq)
			break;
		cur->off += ri.fp;
	}
	*rec = ri.r;
	if (ri.r.len > cap)
		return -PL_ENOSPC;
	err = read_payload(log, cur->sector, cur->off, &ri, buf);
	if (err)
		return err;
	cur->off += ri.fp;
	cur->last_seq = ri.r.seq;
	return 0;
}

int pl_flashlog_last_of_type(const struct pl_flashlog *log, uint8_t type,
			     struct pl_flashlog_rec *rec, void *buf, size_t cap)
{
	struct rec_info ri, best = {0};
	uint32_t s, off, best_s = 0, best_off = 0;
	int err = usable(log), k, found = 0;

	if (err)
		return err;
	if (rec == NULL || (buf == NULL && cap > 0) || type == PL_FLASHLOG_TYPE_ACK)
		return -PL_EINVAL;
	for (s = log->tail;; s = ring_next(log, s)) {
		for (off = SHDR_SIZE;; off += ri.fp) {
			k = parse_record(log, s, off, &ri, NULL);
			if (k < 0)
				return k;
			if (k == REC_END)
				break;
			if (k == REC_OK && ri.r.type == type && ri.r.seq < log->next_seq &&
			    (!found || ri.r.seq > best.r.seq)) {
				found = 1;
				best = ri;
				best_s = s;
				best_off = off;
			}
		}
		if (s == log->head)
			break;
	}
	if (!found)
		return -PL_ENOENT;
	*rec = best.r;
	if (best.r.len > cap)
		return -PL_ENOSPC;
	return read_payload(log, best_s, best_off, &best, buf);
}
