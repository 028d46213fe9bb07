/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Escrow of the recovery key to an OEM's public key (config.h: "recoveryKeyEscrow"). */

#include "config.h"
