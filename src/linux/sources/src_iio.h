/* SPDX-License-Identifier: MIT */
/*
 * The IIO ADC source (pl_live_iio, src_iio.c): its configuration, its keys in the
 * configuration file, and the pieces that tests and the fuzzer reach directly: the scan-layout
 * arithmetic, which is easiest to check on its own, and the parser of the kernel's scan-type
 * strings.
 */
#ifndef PL_LINUX_SRC_IIO_H
#define PL_LINUX_SRC_IIO_H

#include <stddef.h>
#include <stdint.h>

struct pl_config_section; /* config/keys.h */

/* Key mode: how samples are taken. */
enum pl_iio_mode {
	PL_IIO_POLL = 0, /* in_voltageN_raw read at rate_hz, paced by a timerfd */
	PL_IIO_BUFFER,   /* the kernel's buffered capture from /dev/iio:deviceN */
};

/*
 * What pl_live_iio.open() takes. Fill it with designated initialisers; what is left zero is
 * the default. The strings must outlive the source.
 */
struct pl_iio_config {
	const char *name;       /* the meter's, for messages; may be NULL */
	const char *device;     /* the device's name ("ads1015") or its sysfs directory;
				 * required */
	uint32_t channel;       /* N of in_voltageN */
	enum pl_iio_mode mode;
	uint32_t rate_hz;       /* samples per second; 0: 1000 */
	const char *trigger;    /* buffer mode: the trigger to set; NULL: the device's own */
	const char *sysfs_root; /* NULL: "/sys"; tests point it at a fake tree */
	const char *dev_root;   /* NULL: "/dev"; likewise */
	/*
	 * How often read() checks that the device's sysfs directory is still there, ns of
	 * CLOCK_MONOTONIC; 0: once a second; negative: at every read. A real device that goes
	 * away makes its reads fail (ENODEV) anyway; the check is for what reads cannot tell,
	 * such as a fake tree removed under a test (which checks at every read).
	 */
	int64_t presence_check_ns;
};

/* The keys only source = iio takes (config.c refuses them elsewhere), NULL-terminated. */
extern const char *const pl_iio_keys[];
/* The values of key mode, in the order of enum pl_iio_mode, NULL-terminated. */
extern const char *const pl_iio_mode_names[];

/*
 * Checks what a [meter NAME] section with source = iio must have (the device) and must not
 * (a trigger in poll mode), reporting through config/keys.h. Called by the configuration
 * parser.
 */
void pl_iio_check_keys(struct pl_config_section *s, const struct pl_iio_config *c);

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

#endif
