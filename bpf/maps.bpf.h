/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * maps.bpf.h - the classifier's maps, pinned by name below the instance's
 * bpffs root (set as pin_root_path when the object is opened), so that the
 * XDP and TC objects, smtpguardctl and a restarted daemon share one set.
 */
#ifndef SMTPGUARD_MAPS_BPF_H
#define SMTPGUARD_MAPS_BPF_H

#include <smtpguard/maps.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SG_MAX_POLICY_ENTRIES);
	__type(key, struct sg_lpm_v4_key);
	__type(value, struct sg_policy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SG_MAX_POLICY_ENTRIES);
	__type(key, struct sg_lpm_v6_key);
	__type(value, struct sg_policy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SG_MAX_RATE_CLASSES);
	__type(key, __u32);
	__type(value, struct sg_rate_class);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rate_classes SEC(".maps");

/* A plain hash (not LRU) because bpf_spin_lock is only allowed there; the
 * daemon evicts idle entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SG_MAX_SOURCES);
	__type(key, struct sg_src_key);
	__type(value, struct sg_src_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} src_state SEC(".maps");

/* Shared buckets per interface and rate class, used when src_state is
 * full, so that a flood of new source addresses cannot escape its limits
 * nor spend another interface's bucket. Room for every attachment and
 * class; the daemon drops the entries of interfaces that are gone. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SG_MAX_ATTACHMENTS * SG_MAX_RATE_CLASSES);
	__type(key, struct sg_overflow_key);
	__type(value, struct sg_src_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} overflow_state SEC(".maps");

/* Source prefixes bound to interfaces (see struct sg_bound). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SG_MAX_BOUND);
	__type(key, struct sg_lpm_v6_key);
	__type(value, struct sg_bound);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} src_bound SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SG_MAX_ATTACHMENTS);
	__type(key, __u32);
	__type(value, struct sg_iface_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} iface_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SG_MAX_FLOWS);
	__type(key, struct sg_flow_key);
	__type(value, struct sg_src_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_sender SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sg_settings);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SG_STAT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

/* The proxy's transparent listeners: 2*worker (IPv4) and 2*worker+1 (IPv6).
 * A listener closed by its process leaves the map by itself: fail mode. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2 * SG_MAX_WORKERS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} listeners SEC(".maps");

/* Written only by the daemon; pinned here so every object shares it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SG_MAX_ATTACHMENTS);
	__type(key, __u32);
	__type(value, struct sg_attachment);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} attachments SEC(".maps");

/* Written by the daemon's proxy; the classifier reads it in steer mode
 * suspect. Not preallocated: only senders the proxy has seen have one. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SG_MAX_SOURCES);
	__type(key, struct sg_src_key);
	__type(value, struct sg_src_feedback);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} src_feedback SEC(".maps");

/* Written only by the daemon's proxy, in place (mmap); smtpguardctl
 * stats reads it. Pinned here so every object shares it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sg_proxy_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} proxy_stats SEC(".maps");

/* The proxy's gauges and histograms (the metrics): like proxy_stats. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sg_proxy_metrics);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} proxy_metrics SEC(".maps");

/* Bulk bodies shared between hosts: userspace's alone (maps.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SG_MAX_BULK_SHARED);
	__type(key, __u64);
	__type(value, struct sg_bulk_shared);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bulk_shared SEC(".maps");

#endif /* SMTPGUARD_MAPS_BPF_H */
