/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * routing.h - the policy routing that makes steered packets local: a rule
 * "fwmark steer_mark lookup route_table" and a "local default dev lo" route
 * in that table, for IPv4 and IPv6. bpf_sk_assign alone does not bypass
 * routing: a packet to the (non-local) MX address would be forwarded.
 * Also checks the sysctls the steering depends on.
 */
#ifndef SMTPGUARD_ROUTING_H
#define SMTPGUARD_ROUTING_H

#include "config.h"

int sg_routing_install(const struct sg_config *cfg);
void sg_routing_remove(const struct sg_config *cfg);

#endif
