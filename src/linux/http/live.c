/* SPDX-License-Identifier: MIT */
/*
 * The live box (live.h): two copies under a mutex.
 */
#include <stdlib.h>
#include <string.h>

#include "http/live.h"

struct pl_live *pl_live_new(size_t nmeters, size_t nsinks)
{
	struct pl_live *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->nmeters = nmeters;
	l->nsinks = nsinks;
	l->m = calloc(nmeters ? nmeters : 1, sizeof(*l->m));
	l->s = calloc(nsinks ? nsinks : 1, sizeof(*l->s));
	if (l->m == NULL || l->s == NULL || pthread_mutex_init(&l->mu, NULL) != 0) {
		free(l->m);
		free(l->s);
		free(l);
		return NULL;
	}
	return l;
}

void pl_live_free(struct pl_live *l)
{
	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l->m);
	free(l->s);
	free(l);
}

static void copy(struct pl_live *dst, const struct pl_live *src)
{
	memcpy(dst->m, src->m, src->nmeters * sizeof(*src->m));
	memcpy(dst->s, src->s, src->nsinks * sizeof(*src->s));
	dst->updated_us = src->updated_us;
}

void pl_live_put(struct pl_live *l, const struct pl_live *src)
{
	pthread_mutex_lock(&l->mu);
	copy(l, src);
	pthread_mutex_unlock(&l->mu);
}

void pl_live_get(struct pl_live *l, struct pl_live *dst)
{
	pthread_mutex_lock(&l->mu);
	copy(dst, l);
	pthread_mutex_unlock(&l->mu);
}
