/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * lru.h - recency lists over the entries of a preallocated array, linked
 * by index (32 bits each way, no pointers, no allocation): the sender
 * table and the bulk table keep their entries in two of them each, a
 * probation list and a protected one (a segmented LRU), so that a flood
 * of one-off keys or bodies only pushes out other one-offs.
 */
#ifndef SMTPGUARD_SCAN_LRU_H
#define SMTPGUARD_SCAN_LRU_H

#include <stddef.h>
#include <stdint.h>

#define SG_LRU_NONE UINT32_MAX

struct sg_lru_link {
	uint32_t prev, next;	/* toward the most recent, toward the least */
};

struct sg_lru {
	uint32_t head, tail;	/* the most and the least recently used */
	uint32_t count;
};

/* Where the links live: entry i's link is at base + i * stride + offset. */
struct sg_lru_space {
	char *base;
	size_t stride, offset;
};

static inline struct sg_lru_link *sg_lru_link(const struct sg_lru_space *s, uint32_t i)
{
	return (struct sg_lru_link *)(s->base + (size_t)i * s->stride + s->offset);
}

static inline void sg_lru_init(struct sg_lru *l)
{
	l->head = l->tail = SG_LRU_NONE;
	l->count = 0;
}

static inline void sg_lru_push_head(const struct sg_lru_space *s, struct sg_lru *l, uint32_t i)
{
	struct sg_lru_link *k = sg_lru_link(s, i);

	k->prev = SG_LRU_NONE;
	k->next = l->head;
	if (l->head != SG_LRU_NONE)
		sg_lru_link(s, l->head)->prev = i;
	else
		l->tail = i;
	l->head = i;
	l->count++;
}

static inline void sg_lru_remove(const struct sg_lru_space *s, struct sg_lru *l, uint32_t i)
{
	struct sg_lru_link *k = sg_lru_link(s, i);

	if (k->prev != SG_LRU_NONE)
		sg_lru_link(s, k->prev)->next = k->next;
	else
		l->head = k->next;
	if (k->next != SG_LRU_NONE)
		sg_lru_link(s, k->next)->prev = k->prev;
	else
		l->tail = k->prev;
	k->prev = k->next = SG_LRU_NONE;
	l->count--;
}

/* i was used: it becomes the most recent of l (it must be in l). */
static inline void sg_lru_touch(const struct sg_lru_space *s, struct sg_lru *l, uint32_t i)
{
	if (l->head == i)
		return;
	sg_lru_remove(s, l, i);
	sg_lru_push_head(s, l, i);
}

#endif
