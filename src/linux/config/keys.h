/* SPDX-License-Identifier: MIT */
/*
 * What a source's own check of its keys sees of a [meter NAME] section (config.c calls
 * pl_iio_check_keys() and its siblings while it checks each meter). The diagnostics join the
 * file's others, as "FILE:LINE: [meter NAME]: ..." or "FILE:LINE: [meter NAME] KEY: ...".
 */
#ifndef PL_CONFIG_KEYS_H
#define PL_CONFIG_KEYS_H

struct pl_config_section; /* a section being checked; private to config.c */

/* The line where key was set in the section, 0 if it was not. */
unsigned pl_config_key_line(const struct pl_config_section *s, const char *key);

/* An error at the section's line: "missing key 'KEY' (WHY)". */
void pl_config_missing(struct pl_config_section *s, const char *key, const char *why);

/* An error at key's own line, "KEY: WHY", if the key was set; nothing otherwise. */
void pl_config_not_here(struct pl_config_section *s, const char *key, const char *why);

#endif
