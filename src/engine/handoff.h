/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The OEM hand-off: the customer's first boot (config.h: "oem"). */
