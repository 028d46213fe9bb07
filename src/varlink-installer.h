/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* imprint --varlink: the io.imprint.Installer service (data/io.imprint.Installer.varlink,
 * imprint-varlink(7)), a front end of the install session. Serves the sockets systemd passed
 * (imprint-varlink.socket), or listen_path (mode 0600) when given, until a minute passes without
 * connections, calls or an install. Returns 0, or a negative errno with error.h's sentence. */
int varlink_installer_run(const char *listen_path);
