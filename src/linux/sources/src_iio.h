/*
 * The IIO ADC source's pieces that tests reach directly (src_iio.c). The daemon needs only
 * pl_live_iio from live.h; these are the scan-layout arithmetic, which is easiest to check on
 * its own, and one knob that makes the vanishing checks immediate in tests.
 */
#ifndef PL_LINUX_SRC_IIO_H
#define PL_LINUX_SRC_IIO_H

#include <stddef.h>
#include <stdint.h>

/* A scan element's storage, as the kernel describes it in scan_elements/<channel>_type. */
struct pl_iio_type {
	int be;               /* big-endian storage */
	int is_signed;
	unsigned realbits;    /* bits of the value, 1..64 */
	unsigned storagebits; /* bits of storage per repeat: 8, 16, 32 or 64 */
	unsigned repeat;      /* 1 unless the type says X<n> */
	unsigned shift;       /* the value sits this many bits up in its storage */
};

/*
 * Parses a type such as "le:s12/16>>4", "be:u16/16>>0" or "le:s16/16X2>>0". Returns 0, or
 * -PL_EPARSE for anything else (also for storage other than 8/16/32/64 bits or realbits +
 * shift beyond it).
 */
int pl_iio_parse_type(const char *text, struct pl_iio_type *t);

/* The value stored at p (storagebits / 8 bytes): endianness, shift, mask and sign applied. */
int64_t pl_iio_decode(const struct pl_iio_type *t, const unsigned char *p);

/* One enabled scan element. */
struct pl_iio_elem {
	unsigned index;       /* scan_elements/<channel>_index */
	int is_timestamp;     /* the kernel places the timestamp after every channel */
	struct pl_iio_type type;
	size_t offset;        /* set by pl_iio_layout(): bytes from the start of a scan */
};

/*
 * Lays out a scan as the kernel does (iio_compute_scan_bytes): channels by index, then the
 * timestamp, each aligned to its own storage size, the whole padded to the largest one. Sorts
 * e[] into that order, sets each offset and returns the scan's size in bytes.
 */
size_t pl_iio_layout(struct pl_iio_elem *e, size_t n);

/*
 * How often read() checks that the device's sysfs directory is still there (ns of
 * CLOCK_MONOTONIC; default one second). A real device that goes away makes its reads fail
 * (ENODEV) anyway; the check is for what reads cannot tell, such as a fake tree removed under
 * a test. Tests set 0: check on every read.
 */
extern int64_t pl_iio_presence_check_ns;

#endif
